//! ConnectWise Automate's REST API: an integrator login (`POST /cwa/api/v1/apitoken` with the
//! integration's `ClientId`) and one client's computers (`GET /cwa/api/v1/computers` with the
//! condition `Client.Id = N`, `page`/`pageSize` paging until a short page); a computer of any
//! other client in the answer fails the import, so another practice's machines never enter this
//! appliance's evidence.

use std::collections::HashSet;
use std::time::Instant;

use serde_json::Value;
use zeroize::Zeroizing;

use super::{RmmDevice, RmmError, RmmSettings};

const RMM: &str = "ConnectWise Automate";

/// Computers per page.
pub const PAGE_SIZE: u32 = 1_000;

/// Every computer of the client in `settings.site`.
///
/// # Errors
/// See [`RmmError`].
pub async fn devices(
    settings: &RmmSettings,
    deadline: Instant,
) -> Result<Vec<RmmDevice>, RmmError> {
    let origin = super::origin(settings)?;
    let client: u64 = settings
        .site
        .parse()
        .ok()
        .filter(|_| settings.site.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            RmmError::Setup(format!(
                "site `{}` is not an Automate client ID (a number: Clients > the client > its ID)",
                crate::oauth::printable(&settings.site)
            ))
        })?;
    let client_id = settings
        .client_id
        .as_deref()
        .filter(|id| !id.is_empty() && reqwest::header::HeaderValue::from_str(id).is_ok())
        .ok_or_else(|| {
            RmmError::Setup(
                "ConnectWise Automate needs the integration's client_id (the GUID ConnectWise issued for the integration)".to_owned(),
            )
        })?;
    if settings.user.trim().is_empty() || settings.secret.is_empty() {
        return Err(RmmError::Setup(
            "ConnectWise Automate needs the integrator user (api_user) and its password (the vault entry)".to_owned(),
        ));
    }
    let http = super::http_client(settings)?;
    let api = format!("{origin}cwa/api/v1/");
    let mut token = login(&http, &api, client_id, settings, deadline).await?;
    let condition = format!("Client.Id = {client}");
    let mut devices = Vec::new();
    let mut seen = HashSet::new();
    for page in 1..=super::MAX_PAGES {
        let mut url = url::Url::parse(&format!("{api}computers"))
            .map_err(|err| RmmError::Setup(format!("api_url: {err}")))?;
        url.query_pairs_mut()
            .append_pair("pageSize", &PAGE_SIZE.to_string())
            .append_pair("page", &page.to_string())
            .append_pair("condition", &condition)
            .append_pair("orderBy", "Id asc");
        let answer = get(&http, &url, &api, client_id, &mut token, settings, deadline).await?;
        let Value::Array(records) = answer else {
            return Err(RmmError::Malformed {
                rmm: RMM,
                detail: "a page of /cwa/api/v1/computers is not a JSON array".to_owned(),
            });
        };
        let count = records.len();
        for record in &records {
            let found = computer(record, client)?;
            if !seen.insert(found.id.clone()) {
                return Err(RmmError::Malformed {
                    rmm: RMM,
                    detail: format!(
                        "computer {} appears on two pages (the server ignored paging)",
                        found.id
                    ),
                });
            }
            devices.push(found);
        }
        if count < PAGE_SIZE as usize {
            return Ok(devices);
        }
    }
    Err(RmmError::TooManyPages {
        rmm: RMM,
        pages: super::MAX_PAGES,
    })
}

fn client_header(client_id: &str) -> Result<reqwest::header::HeaderValue, RmmError> {
    reqwest::header::HeaderValue::from_str(client_id)
        .map_err(|_| RmmError::Setup("the client_id cannot travel in a header".to_owned()))
}

/// The access token of an integrator login.
async fn login(
    http: &reqwest::Client,
    api: &str,
    client_id: &str,
    settings: &RmmSettings,
    deadline: Instant,
) -> Result<Zeroizing<String>, RmmError> {
    let body = Zeroizing::new(
        serde_json::to_vec(&serde_json::json!({
            "UserName": settings.user,
            "Password": settings.secret.as_str(),
        }))
        .map_err(|err| RmmError::Setup(err.to_string()))?,
    );
    let (status, bytes) = super::send(RMM, deadline, settings.request_timeout, |timeout| {
        Ok(http
            .post(format!("{api}apitoken"))
            .header("ClientId", client_header(client_id)?)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(timeout)
            .body(body.to_vec()))
    })
    .await?;
    if status != 200 {
        return Err(RmmError::Login {
            rmm: RMM,
            detail: format!(
                "HTTP {status}: {} (check api_user and client_id in the configuration and the password in the vault)",
                super::error_detail(&bytes)
            ),
        });
    }
    let json: Value = serde_json::from_slice(&bytes).map_err(|_| RmmError::Login {
        rmm: RMM,
        detail: "the apitoken answer is not JSON".to_owned(),
    })?;
    if json["IsTwoFactorRequired"].as_bool() == Some(true) {
        return Err(RmmError::Login {
            rmm: RMM,
            detail: "the user needs two-factor sign-in; use an integrator user (System > Manage Integrator Logins), which signs in without it".to_owned(),
        });
    }
    let token = json["AccessToken"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| RmmError::Login {
            rmm: RMM,
            detail: "the apitoken answer has no AccessToken".to_owned(),
        })?;
    Ok(Zeroizing::new(token.to_owned()))
}

/// One page; a 401 logs in again once, 429 waits.
async fn get(
    http: &reqwest::Client,
    url: &url::Url,
    api: &str,
    client_id: &str,
    token: &mut Zeroizing<String>,
    settings: &RmmSettings,
    deadline: Instant,
) -> Result<Value, RmmError> {
    let mut renewed = false;
    loop {
        let answer = super::send(RMM, deadline, settings.request_timeout, |timeout| {
            Ok(http
                .get(url.clone())
                .header(reqwest::header::AUTHORIZATION, super::bearer(RMM, token)?)
                .header("ClientId", client_header(client_id)?)
                .header(reqwest::header::ACCEPT, "application/json")
                .timeout(timeout))
        })
        .await?;
        let answer = super::data_answer(RMM, answer, url.path(), renewed, &[401, 403], || {
            format!(
                "the integrator user needs the Computers read permission for client {}",
                settings.site
            )
        })?;
        match answer {
            Some(json) => return Ok(json),
            None => {
                renewed = true;
                *token = login(http, api, client_id, settings, deadline).await?;
            }
        }
    }
}

/// When Automate says a time: RFC 3339, or its offset-less form, which the server writes in UTC.
fn automate_time(text: &str) -> Option<time::OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .or_else(|| time::OffsetDateTime::parse(&format!("{text}Z"), &Rfc3339).ok())
}

/// One computer record, which must belong to `client`.
fn computer(record: &Value, client: u64) -> Result<RmmDevice, RmmError> {
    let malformed = |what: String| RmmError::Malformed {
        rmm: RMM,
        detail: format!("a computer record {what}"),
    };
    if !record.is_object() {
        return Err(malformed("is not an object".to_owned()));
    }
    let id = super::id_text(&record["Id"]).ok_or_else(|| malformed("has no Id".to_owned()))?;
    let owner = super::id_text(&record["Client"]["Id"])
        .ok_or_else(|| malformed(format!("{id} names no Client.Id")))?;
    if owner != client.to_string() {
        return Err(malformed(format!(
            "{id} belongs to client {owner}, not to client {client} (the server ignored the condition; nothing of another client is kept)"
        )));
    }
    let hostname = super::text(&record["ComputerName"])
        .ok_or_else(|| malformed(format!("{id} has no ComputerName")))?;
    let last_seen = match &record["RemoteAgentLastContact"] {
        Value::Null => None,
        Value::String(s) => Some(automate_time(s).ok_or_else(|| {
            malformed(format!(
                "{id} has a RemoteAgentLastContact that is not a time"
            ))
        })?),
        _ => {
            return Err(malformed(format!(
                "{id} has a RemoteAgentLastContact that is not a time"
            )));
        }
    };
    Ok(RmmDevice {
        id,
        hostname,
        domain: super::text(&record["DomainName"]),
        operating_system: super::text(&record["OperatingSystemName"]),
        device_type: super::text(&record["Type"]),
        ip_address: super::text(&record["LocalIPAddress"]),
        last_seen,
        online: record["Status"]
            .as_str()
            .map(|s| s.eq_ignore_ascii_case("online")),
        computer: true,
        retired: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_computer_of_another_client_is_refused() {
        let record = serde_json::json!({"Id": 7, "ComputerName": "PC-7", "Client": {"Id": 2}});
        assert!(computer(&record, 1).is_err());
        assert_eq!(computer(&record, 2).unwrap().hostname, "PC-7");
    }

    #[test]
    fn times_with_and_without_offset() {
        assert!(automate_time("2026-12-04T10:15:00Z").is_some());
        assert!(automate_time("2026-12-04T10:15:00").is_some());
        assert!(automate_time("2026-12-04T10:15:00.123").is_some());
        assert!(automate_time("yesterday").is_none());
    }
}
