//! The first-boot wizard's side of the API: network settings (written as a systemd-networkd
//! file the NixOS module applies), site claim, Active Directory test and save, credentials (to
//! the encrypted vault), time zone, the console PIN (`crate::pin`), and completion (which starts
//! the first scan).
//!
//! Each step is sealed as an `operator_action` bundle before it takes effect; file writes, the
//! vault's encryption and `ip` run on blocking threads.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;

use api::endpoint;

use crate::api::{Answer, Fail, Routes, bad_request, blocking, internal, operator_action};
use crate::{Shared, host};

pub(crate) fn routes(routes: Routes) -> Routes {
    routes
        .on::<endpoint::Setup, _, _, _>(setup_state)
        .on::<endpoint::SetNetwork, _, _, _>(network)
        .on::<endpoint::Claim, _, _, _>(claim)
        .on::<endpoint::TestDirectory, _, _, _>(test_directory)
        .on::<endpoint::SaveDirectory, _, _, _>(save_directory)
        .on::<endpoint::SetCredential, _, _, _>(credentials)
        .on::<endpoint::SetTimezone, _, _, _>(timezone)
        .on::<endpoint::SetPin, _, _, _>(pin)
        .on::<endpoint::CompleteSetup, _, _, _>(complete)
}

/// The network interfaces other than loopback (runs `ip` on a blocking thread).
async fn interfaces() -> Result<Vec<api::Interface>, Fail> {
    let mut interfaces = blocking(host::interfaces).await?;
    interfaces.retain(|i| i.name != "lo");
    Ok(interfaces)
}

async fn state_of(shared: &Shared) -> Result<api::SetupState, Fail> {
    let interfaces = interfaces().await?;
    Ok(setup_state_with(shared, interfaces))
}

fn setup_state_with(shared: &Shared, interfaces: Vec<api::Interface>) -> api::SetupState {
    let state = shared.state();
    let setup = &state.saved.setup;
    let code = claim_code(shared);
    let directory = setup.directory.clone().or_else(|| {
        shared
            .settings
            .config
            .directory
            .as_ref()
            .map(|d| api::DirectorySettings {
                domain: d.domain.clone(),
                dc: d.dc.clone(),
                bind_user: d.bind_user.clone(),
            })
    });
    let mut credentials: Vec<api::CredentialSlot> = setup
        .accounts
        .keys()
        .filter_map(|slot| slot_from_name(slot))
        .collect();
    credentials.sort();
    api::SetupState {
        complete: setup.complete,
        interfaces,
        network: setup.network.clone(),
        // After setup the code is a secret of the partner's: the console no longer shows it.
        claim: if setup.complete {
            api::ClaimInfo {
                url: claim_page(shared),
                code: String::new(),
                claimed_with: setup.claimed_with.clone(),
            }
        } else {
            api::ClaimInfo {
                url: format!("{}?code={code}", claim_page(shared)),
                code,
                claimed_with: setup.claimed_with.clone(),
            }
        },
        directory,
        credentials,
        timezone: setup.timezone.clone().unwrap_or_else(|| "UTC".to_owned()),
        pin_set: shared.console_pin.is_set(),
    }
}

/// Where the partner claims this appliance: its own Central Command's claim page when the link is
/// configured (`[central] url`), else `daemon.claim_url`.
fn claim_page(shared: &Shared) -> String {
    match &shared.settings.config.central {
        Some(central) => format!("{}/claim", central.url.trim_end_matches('/')),
        None => shared.settings.config.daemon.claim_url.clone(),
    }
}

/// The code that identifies this appliance to the partner's portal: a random secret kept in the data
/// directory, never the key id that every kit prints.
fn claim_code(shared: &Shared) -> String {
    shared.settings.claim_code.clone()
}

/// Proof that a setup step may change settings: setup is not complete yet, or the request
/// carries the site's claim code (`X-Osiris-Claim-Code`). Once setup is complete the console no
/// longer shows the code, so only the partner, who recorded it when claiming the site, can
/// re-open the settings.
pub(crate) struct SetupOpen;

impl axum::extract::FromRequestParts<Arc<Shared>> for SetupOpen {
    type Rejection = Fail;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        shared: &Arc<Shared>,
    ) -> Result<SetupOpen, Fail> {
        if !shared.state().saved.setup.complete {
            return Ok(SetupOpen);
        }
        if claim_code_given(&parts.headers, shared) {
            return Ok(SetupOpen);
        }
        tracing::warn!(peer = ?crate::api::current_peer(), "Refused a setup change after setup was completed (no or a wrong claim code).");
        Err(Fail(
            axum::http::StatusCode::FORBIDDEN,
            "setup is complete; these settings can only be changed again with the site's claim code".to_owned(),
            Some("your IT partner has the code; they enter it to re-open setup".to_owned()),
        ))
    }
}

/// Whether `headers` carry the site's claim code (`X-Osiris-Claim-Code`, any case, dashes or not).
fn claim_code_given(headers: &axum::http::HeaderMap, shared: &Shared) -> bool {
    let normal = |code: &str| -> String {
        code.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect()
    };
    let given = headers
        .get(api::CLAIM_CODE_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(normal)
        .unwrap_or_default();
    let expected = normal(&claim_code(shared));
    let matches = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    matches && !expected.is_empty()
}

async fn setup_state(State(shared): State<Arc<Shared>>) -> Answer<api::SetupState> {
    Ok(Json(state_of(&shared).await?))
}

/// Checks network settings; `Err` says which field is wrong and how to fix it.
pub(crate) fn check_network(
    settings: &api::NetworkSettings,
    interfaces: &[String],
) -> Result<(), (String, String)> {
    let err = |e: String, h: &str| Err((e, h.to_owned()));
    if !interfaces.iter().any(|i| i == &settings.interface) {
        return err(
            format!(
                "there is no network interface `{}`",
                settings.interface.escape_debug()
            ),
            "pick one of the interfaces listed",
        );
    }
    match settings.mode {
        api::NetworkMode::Dhcp => {
            if settings.address.is_some() || settings.gateway.is_some() {
                return err(
                    "DHCP takes no address or gateway".to_owned(),
                    "leave address and gateway empty, or choose static",
                );
            }
        }
        api::NetworkMode::Static => {
            let Some(address) = &settings.address else {
                return err(
                    "a static address is required".to_owned(),
                    "e.g. 192.168.1.20/24",
                );
            };
            let Some((ip, prefix)) = parse_cidr(address) else {
                return err(
                    format!(
                        "`{}` is not an address with prefix length",
                        address.escape_debug()
                    ),
                    "write it like 192.168.1.20/24",
                );
            };
            match &settings.gateway {
                None => {
                    return err(
                        "a gateway is required".to_owned(),
                        "usually the router, e.g. 192.168.1.1",
                    );
                }
                Some(gw) => match gw.parse::<IpAddr>() {
                    Ok(gw) if gw.is_ipv4() == ip.is_ipv4() && gw != ip => {
                        if !same_subnet(ip, gw, prefix) {
                            return err(
                                format!("gateway {gw} is not in {address}'s network"),
                                "check the gateway or the prefix length",
                            );
                        }
                    }
                    _ => {
                        return err(
                            format!("`{}` is not a usable gateway address", gw.escape_debug()),
                            "e.g. 192.168.1.1",
                        );
                    }
                },
            }
        }
    }
    if settings.dns.len() > 3 {
        return err(
            "at most 3 DNS servers".to_owned(),
            "the domain controller first",
        );
    }
    for dns in &settings.dns {
        if dns.parse::<IpAddr>().is_err() {
            return err(
                format!("`{}` is not a DNS server address", dns.escape_debug()),
                "usually the domain controller's address, e.g. 192.168.1.10",
            );
        }
    }
    Ok(())
}

fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (ip, prefix) = text.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let prefix: u8 = prefix.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (prefix > 0 && prefix <= max && !ip.is_unspecified() && !ip.is_multicast())
        .then_some((ip, prefix))
}

fn same_subnet(a: IpAddr, b: IpAddr, prefix: u8) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

/// The systemd-networkd file for the settings (the NixOS module links it into place).
pub(crate) fn networkd_file(settings: &api::NetworkSettings) -> String {
    let mut out = format!(
        "# Written by osirisd from the console's network step.\n[Match]\nName={}\n\n[Network]\n",
        settings.interface
    );
    match settings.mode {
        api::NetworkMode::Dhcp => out.push_str("DHCP=yes\n"),
        api::NetworkMode::Static => {
            if let Some(address) = &settings.address {
                out.push_str(&format!("Address={address}\n"));
            }
            if let Some(gateway) = &settings.gateway {
                out.push_str(&format!("Gateway={gateway}\n"));
            }
        }
    }
    for dns in &settings.dns {
        out.push_str(&format!("DNS={dns}\n"));
    }
    out
}

async fn network(
    State(shared): State<Arc<Shared>>,
    _open: SetupOpen,
    Json(settings): Json<api::NetworkSettings>,
) -> Answer<api::SetupState> {
    let mut interfaces = blocking(host::interfaces).await?;
    let names: Vec<String> = interfaces.iter().map(|i| i.name.clone()).collect();
    interfaces.retain(|i| i.name != "lo");
    check_network(&settings, &names).map_err(|(e, h)| bad_request(e, h))?;
    operator_action(
        &shared,
        "setup",
        "console",
        "network settings",
        serde_json::to_value(&settings).map_err(internal)?,
    )
    .await?;
    let dir = shared.settings.data_dir.join("network");
    let text = networkd_file(&settings);
    blocking(move || {
        std::fs::create_dir_all(&dir)?;
        durable::write(&dir.join("10-osiris.network"), text.as_bytes(), 0o644)?;
        anyhow::Ok(())
    })
    .await?
    .map_err(internal)?;
    shared.state().saved.setup.network = Some(settings);
    shared.save().await;
    Ok(Json(setup_state_with(&shared, interfaces)))
}

async fn claim(
    State(shared): State<Arc<Shared>>,
    _open: SetupOpen,
    Json(request): Json<api::ClaimRequest>,
) -> Answer<api::SetupState> {
    let code = request.code.trim().to_uppercase();
    let ok = (4..=32).contains(&code.len())
        && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !ok {
        return Err(bad_request(
            "a claim code is 4 to 32 letters, digits and dashes",
            "read it from the partner's portal, e.g. K7QF-29XD",
        ));
    }
    operator_action(
        &shared,
        "setup",
        "console",
        "site claimed",
        serde_json::json!({"claim_code": code}),
    )
    .await?;
    shared.state().saved.setup.claimed_with = Some(code);
    shared.save().await;
    Ok(Json(state_of(&shared).await?))
}

/// Validates the wizard's AD settings and builds the discovery settings for them.
fn directory_settings(
    shared: &Shared,
    request: &api::DirectoryRequest,
) -> Result<discovery::DirectoryConfig, Fail> {
    let domain = request.domain.trim().to_lowercase();
    if !(domain.contains('.') && model::is_valid_host(&domain)) {
        return Err(bad_request(
            format!("`{}` is not a domain name", request.domain.escape_debug()),
            "the Windows domain, e.g. clinic.local",
        ));
    }
    let dc = request
        .dc
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty());
    if let Some(dc) = dc.filter(|dc| !model::is_valid_host(dc)) {
        return Err(bad_request(
            format!("`{}` is not a server name or address", dc.escape_debug()),
            "e.g. dc1.clinic.local or 192.168.1.10; leave empty to find it automatically",
        ));
    }
    if !config::is_valid_windows_user(request.bind_user.trim()) {
        return Err(bad_request(
            format!(
                "`{}` is not an account name",
                request.bind_user.escape_debug()
            ),
            "e.g. osiris-scan@clinic.local or CLINIC\\osiris-scan",
        ));
    }
    if request.password.is_empty() {
        return Err(bad_request(
            "the password is empty",
            "type the account's password",
        ));
    }
    let from_config = shared.settings.config.directory.as_ref();
    let ca_pem = match from_config {
        Some(d) => Some(std::fs::read(&d.ca_file).map_err(|err| {
            internal(format!(
                "cannot read the directory CA file {}: {err}",
                d.ca_file.display()
            ))
        })?),
        None => None,
    };
    let resolver = from_config
        .and_then(|d| d.resolver)
        .map(|ip| std::net::SocketAddr::new(ip, 53));
    Ok(discovery::DirectoryConfig {
        domain,
        dc: dc.map(str::to_owned),
        resolver,
        base_dn: None,
        bind_user: request.bind_user.trim().to_owned(),
        bind_password: discovery::BindPassword::new(request.password.clone()),
        tls: match from_config.map(|d| d.tls) {
            Some(config::DirectoryTls::StartTls) => discovery::TlsMode::StartTls,
            _ => discovery::TlsMode::Ldaps,
        },
        ca_pem,
        stale_after_days: from_config.map_or(90, |d| d.stale_after_days),
        page_size: 500,
        timeout: Duration::from_secs(10),
    })
}

/// Plain words for a failed connection test.
fn plain_words(err: &discovery::DiscoveryError, cfg: &discovery::DirectoryConfig) -> String {
    use discovery::DiscoveryError as E;
    let dc = cfg
        .dc
        .clone()
        .unwrap_or_else(|| format!("the domain controller of {}", cfg.domain));
    match err {
        E::InvalidCredentials { .. } => {
            format!("The user name or password for {} is wrong.", cfg.bind_user)
        }
        E::Unreachable { .. } => format!(
            "The appliance cannot reach {dc}. Check the address and that the appliance is on the practice network."
        ),
        E::Tls { .. } | E::InvalidCa { .. } => format!(
            "{dc} answered, but its certificate is not trusted. Your IT partner must install the domain's certificate authority."
        ),
        E::Locate { .. } => format!(
            "No domain controller for {} was found. Type the domain controller's name or address.",
            cfg.domain
        ),
        _ => format!("{dc} refused the connection."),
    }
}

async fn test_directory(
    State(shared): State<Arc<Shared>>,
    _open: SetupOpen,
    Json(request): Json<api::DirectoryRequest>,
) -> Answer<api::ConnectionTest> {
    let cfg = directory_settings(&shared, &request)?;
    let result = discovery::search_computer_names(&cfg, "cn", "osiris-connection-test").await;
    Ok(Json(match result {
        Ok(_) => api::ConnectionTest {
            ok: true,
            message: format!("Connected to {} as {}.", cfg.domain, cfg.bind_user),
            detail: None,
        },
        Err(err) => api::ConnectionTest {
            ok: false,
            message: plain_words(&err, &cfg),
            detail: Some(format!("{:#}", anyhow::Error::new(err))),
        },
    }))
}

async fn save_directory(
    State(shared): State<Arc<Shared>>,
    _open: SetupOpen,
    Json(request): Json<api::DirectoryRequest>,
) -> Answer<api::SetupState> {
    let cfg = directory_settings(&shared, &request)?;
    operator_action(
        &shared,
        "setup",
        "console",
        "Active Directory settings",
        serde_json::json!({"domain": cfg.domain, "dc": cfg.dc, "bind_user": cfg.bind_user}),
    )
    .await?;
    let vault = Arc::clone(&shared);
    blocking(move || crate::secrets::put(&vault, "directory", &request.password)).await??;
    {
        let mut state = shared.state();
        state.saved.setup.directory = Some(api::DirectorySettings {
            domain: cfg.domain.clone(),
            dc: cfg.dc.clone(),
            bind_user: cfg.bind_user.clone(),
        });
        state
            .saved
            .setup
            .accounts
            .insert("directory".to_owned(), cfg.bind_user.clone());
    }
    shared.save().await;
    Ok(Json(state_of(&shared).await?))
}

async fn credentials(
    State(shared): State<Arc<Shared>>,
    _open: SetupOpen,
    Json(request): Json<api::CredentialRequest>,
) -> Answer<api::SetupState> {
    let (slot, user_ok) = match request.slot {
        api::CredentialSlot::Windows => (
            "windows",
            config::is_valid_windows_user(request.user.trim()),
        ),
        api::CredentialSlot::Linux => ("linux", model::is_valid_user(request.user.trim())),
        api::CredentialSlot::Directory => (
            "directory",
            config::is_valid_windows_user(request.user.trim()),
        ),
    };
    if !user_ok {
        return Err(bad_request(
            format!("`{}` is not an account name", request.user.escape_debug()),
            "e.g. CLINIC\\osiris-scan (Windows) or osiris (Linux)",
        ));
    }
    if request.secret.is_empty() {
        return Err(bad_request(
            "the password is empty",
            "type the account's password",
        ));
    }
    let user = request.user.trim().to_owned();
    operator_action(
        &shared,
        "setup",
        "console",
        "credentials stored",
        serde_json::json!({"slot": slot, "user": user}),
    )
    .await?;
    let vault = Arc::clone(&shared);
    blocking(move || crate::secrets::put(&vault, slot, &request.secret)).await??;
    shared
        .state()
        .saved
        .setup
        .accounts
        .insert(slot.to_owned(), user);
    shared.save().await;
    Ok(Json(state_of(&shared).await?))
}

/// An IANA zone name shape: `UTC`, or `Area/City[/Sub]` of letters, digits, `_`, `-`, `+`.
pub(crate) fn valid_timezone(tz: &str) -> bool {
    if tz == "UTC" {
        return true;
    }
    let parts: Vec<&str> = tz.split('/').collect();
    (2..=3).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 32
                && p.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
        })
}

async fn timezone(
    State(shared): State<Arc<Shared>>,
    _open: SetupOpen,
    Json(request): Json<api::TimezoneRequest>,
) -> Answer<api::SetupState> {
    let tz = request.timezone.trim();
    if !valid_timezone(tz) {
        return Err(bad_request(
            format!("`{}` is not a time zone name", tz.escape_debug()),
            "e.g. America/Chicago or Europe/Berlin",
        ));
    }
    operator_action(
        &shared,
        "setup",
        "console",
        "time zone",
        serde_json::json!({"timezone": tz}),
    )
    .await?;
    let file = shared.settings.data_dir.join("timezone");
    let text = format!("{tz}\n");
    blocking(move || durable::write(&file, text.as_bytes(), 0o644))
        .await?
        .map_err(internal)?;
    shared.state().saved.setup.timezone = Some(tz.to_owned());
    shared.save().await;
    Ok(Json(state_of(&shared).await?))
}

/// `POST /v1/setup/pin`. During setup anyone at the console may set it; afterwards the first
/// PIN may still be set (an appliance set up before PINs existed has none, and a PIN only takes
/// away), but changing one needs the current PIN (judged with the same wait as an unlock) or
/// the site's claim code.
async fn pin(
    State(shared): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    Json(request): Json<api::PinRequest>,
) -> Answer<api::SetupState> {
    crate::pin::check_rule(&request.pin).map_err(|(e, h)| bad_request(e, h))?;
    let console_pin = &shared.console_pin;
    let uid = crate::api::current_peer().map_or(u32::MAX, |peer| peer.uid);
    let complete = shared.state().saved.setup.complete;
    let change = console_pin.is_set();
    if complete && change && !claim_code_given(&headers, &shared) {
        let Some(current) = &request.current_pin else {
            tracing::warn!(
                uid,
                "Refused a console PIN change after setup: no current PIN or claim code."
            );
            return Err(Fail(
                axum::http::StatusCode::FORBIDDEN,
                "setup is complete; the console PIN can only be changed with the current PIN or the site's claim code".to_owned(),
                Some("type the current PIN; if it is lost, your IT partner re-opens it with the claim code".to_owned()),
            ));
        };
        match console_pin.check(current).await? {
            crate::pin::Verdict::Right | crate::pin::Verdict::NoPin => {}
            verdict => {
                return Err(crate::pin::refusal(
                    verdict,
                    "the current PIN is wrong",
                    uid,
                ));
            }
        }
    }
    let what = if change {
        "console PIN changed"
    } else {
        "console PIN set"
    };
    // The PIN and its hash stay out of the evidence log and the journal.
    operator_action(&shared, "setup", "console", what, serde_json::json!({})).await?;
    console_pin.set(&request.pin).await?;
    tracing::info!(uid, changed = change, "Console PIN set.");
    Ok(Json(state_of(&shared).await?))
}

async fn complete(State(shared): State<Arc<Shared>>, _open: SetupOpen) -> Answer<api::SetupState> {
    operator_action(
        &shared,
        "setup",
        "console",
        "first-boot setup completed",
        serde_json::json!({}),
    )
    .await?;
    shared.state().saved.setup.complete = true;
    shared.save().await;
    let control = shared.cycle(api::CycleKind::ServerScan);
    if control.enabled {
        control.trigger.notify_one();
    }
    Ok(Json(state_of(&shared).await?))
}

fn slot_from_name(name: &str) -> Option<api::CredentialSlot> {
    match name {
        "windows" => Some(api::CredentialSlot::Windows),
        "linux" => Some(api::CredentialSlot::Linux),
        "directory" => Some(api::CredentialSlot::Directory),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(
        mode: api::NetworkMode,
        address: Option<&str>,
        gateway: Option<&str>,
        dns: &[&str],
    ) -> api::NetworkSettings {
        api::NetworkSettings {
            interface: "eth0".into(),
            mode,
            address: address.map(str::to_owned),
            gateway: gateway.map(str::to_owned),
            dns: dns.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    #[test]
    fn network_settings_are_checked_field_by_field() {
        use api::NetworkMode::{Dhcp, Static};
        let ifaces = vec!["eth0".to_owned()];
        let cases: [(api::NetworkSettings, &str); 8] = [
            (net(Dhcp, None, None, &["192.168.1.10"]), "ok"),
            (
                net(Static, Some("192.168.1.20/24"), Some("192.168.1.1"), &[]),
                "ok",
            ),
            (
                net(Static, None, Some("192.168.1.1"), &[]),
                "a static address is required",
            ),
            (
                net(Static, Some("192.168.1.20"), Some("192.168.1.1"), &[]),
                "`192.168.1.20` is not an address with prefix length",
            ),
            (
                net(Static, Some("192.168.1.20/24"), Some("10.0.0.1"), &[]),
                "gateway 10.0.0.1 is not in 192.168.1.20/24's network",
            ),
            (
                net(Static, Some("192.168.1.20/24"), Some("x; rm -rf /"), &[]),
                "`x; rm -rf /` is not a usable gateway address",
            ),
            (
                net(Dhcp, None, None, &["dc1"]),
                "`dc1` is not a DNS server address",
            ),
            (
                net(Dhcp, Some("1.2.3.4/8"), None, &[]),
                "DHCP takes no address or gateway",
            ),
        ];
        for (settings, want) in cases {
            let got = match check_network(&settings, &ifaces) {
                Ok(()) => "ok".to_owned(),
                Err((e, _)) => e,
            };
            assert_eq!(got, want);
        }
        let mut other = net(Dhcp, None, None, &[]);
        other.interface = "wlan9".into();
        assert!(check_network(&other, &ifaces).is_err());
    }

    #[test]
    fn the_networkd_file_says_exactly_what_was_chosen() {
        let text = networkd_file(&net(
            api::NetworkMode::Static,
            Some("192.168.1.20/24"),
            Some("192.168.1.1"),
            &["192.168.1.10"],
        ));
        expect_test::expect![[r#"
            # Written by osirisd from the console's network step.
            [Match]
            Name=eth0

            [Network]
            Address=192.168.1.20/24
            Gateway=192.168.1.1
            DNS=192.168.1.10
        "#]]
        .assert_eq(&text);
    }

    #[test]
    fn time_zones_have_the_iana_shape() {
        for ok in [
            "UTC",
            "America/Chicago",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
        ] {
            assert!(valid_timezone(ok), "{ok}");
        }
        for bad in [
            "",
            "Chicago",
            "america/chicago",
            "America/../etc",
            "America/Chi cago",
            "A/B/C/D",
        ] {
            assert!(!valid_timezone(bad), "{bad}");
        }
    }
}
