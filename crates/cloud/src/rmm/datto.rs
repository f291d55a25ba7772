//! Datto RMM's API v2: the OAuth 2.0 password grant (`/auth/oauth/token`, the documented
//! `public-client` basic credentials, the API key and secret key as user name and password) and
//! one site's devices (`/api/v2/site/{siteUid}/devices`, 250 a page, following
//! `pageDetails.nextPageUrl` only on the configured origin and the same listing).

use std::time::Instant;

use serde_json::Value;
use zeroize::Zeroizing;

use super::{RmmDevice, RmmError, RmmSettings};

const RMM: &str = "Datto RMM";

/// Datto's most devices per page.
pub const PAGE_SIZE: u32 = 250;

/// The basic credentials every API client sends to the token endpoint (Datto's documentation).
const PUBLIC_CLIENT: &str = "public-client:public";

/// Every device of the site in `settings.site`.
///
/// # Errors
/// See [`RmmError`].
pub async fn devices(
    settings: &RmmSettings,
    deadline: Instant,
) -> Result<Vec<RmmDevice>, RmmError> {
    let origin = super::origin(settings)?;
    if !valid_site_uid(&settings.site) {
        return Err(RmmError::Setup(format!(
            "site `{}` is not a Datto site UID (Setup > Sites > the site > its UID, like 8a2f…-…)",
            crate::oauth::printable(&settings.site)
        )));
    }
    if settings.user.trim().is_empty() || settings.secret.trim().is_empty() {
        return Err(RmmError::Setup(
            "Datto RMM needs the API key (api_user) and the API secret key (the vault entry)"
                .to_owned(),
        ));
    }
    let http = super::http_client(settings)?;
    let mut token = login(&http, &origin, settings, deadline).await?;
    let mut url = origin.clone();
    url.path_segments_mut()
        .map_err(|()| RmmError::Setup("api_url cannot take a path".to_owned()))?
        .pop_if_empty()
        .extend(["api", "v2", "site", &settings.site, "devices"]);
    let listing = url.path().to_owned();
    url.query_pairs_mut()
        .append_pair("max", &PAGE_SIZE.to_string())
        .append_pair("page", "0");
    let mut devices = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..super::MAX_PAGES {
        if !seen.insert(url.to_string()) {
            return Err(RmmError::Malformed {
                rmm: RMM,
                detail: "the next-page link repeats a page already read".to_owned(),
            });
        }
        let page = get(&http, &url, &mut token, &origin, settings, deadline).await?;
        let Some(records) = page["devices"].as_array() else {
            return Err(RmmError::Malformed {
                rmm: RMM,
                detail: format!("a page of {listing} has no `devices` array"),
            });
        };
        for record in records {
            devices.push(device(record)?);
        }
        match &page["pageDetails"]["nextPageUrl"] {
            Value::Null => return Ok(devices),
            Value::String(next) => url = same_listing(next, &origin, &listing)?,
            _ => {
                return Err(RmmError::Malformed {
                    rmm: RMM,
                    detail: "pageDetails.nextPageUrl is neither a link nor null".to_owned(),
                });
            }
        }
    }
    Err(RmmError::TooManyPages {
        rmm: RMM,
        pages: super::MAX_PAGES,
    })
}

/// A Datto site UID: a UUID's 36 characters.
pub fn valid_site_uid(site: &str) -> bool {
    site.len() == 36
        && site.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// `link` when it stays on the origin and is the same listing (only its query changes).
fn same_listing(link: &str, origin: &url::Url, listing: &str) -> Result<url::Url, RmmError> {
    let foreign = || RmmError::ForeignLink {
        rmm: RMM,
        link: crate::oauth::printable(link),
        origin: format!("{}{}", origin.as_str().trim_end_matches('/'), listing),
    };
    let url = url::Url::parse(link).map_err(|_| foreign())?;
    if url.origin() != origin.origin()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.path() != listing
        || url.fragment().is_some()
    {
        return Err(foreign());
    }
    Ok(url)
}

/// The access token of a password grant.
async fn login(
    http: &reqwest::Client,
    origin: &url::Url,
    settings: &RmmSettings,
    deadline: Instant,
) -> Result<Zeroizing<String>, RmmError> {
    let body = Zeroizing::new(
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "password")
            .append_pair("username", &settings.user)
            .append_pair("password", &settings.secret)
            .finish(),
    );
    let mut basic = reqwest::header::HeaderValue::from_str(&format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, PUBLIC_CLIENT)
    ))
    .map_err(|_| RmmError::Setup("the client credentials cannot travel in a header".to_owned()))?;
    basic.set_sensitive(true);
    let (status, bytes) = super::send(RMM, deadline, settings.request_timeout, |timeout| {
        Ok(http
            .post(format!("{origin}auth/oauth/token"))
            .header(reqwest::header::AUTHORIZATION, basic.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(timeout)
            .body(body.as_bytes().to_vec()))
    })
    .await?;
    if status != 200 {
        return Err(RmmError::Login {
            rmm: RMM,
            detail: format!(
                "HTTP {status}: {} (check the API key in the configuration and the secret key in the vault; Datto shows the secret only when the key is generated, under Setup > Users > the API user)",
                super::error_detail(&bytes)
            ),
        });
    }
    let json: Value = serde_json::from_slice(&bytes).map_err(|_| RmmError::Login {
        rmm: RMM,
        detail: "the token endpoint's answer is not JSON".to_owned(),
    })?;
    let token = json["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| RmmError::Login {
            rmm: RMM,
            detail: "the token endpoint's answer has no access_token".to_owned(),
        })?;
    Ok(Zeroizing::new(token.to_owned()))
}

/// One page; a 401 logs in again once, 429 waits.
async fn get(
    http: &reqwest::Client,
    url: &url::Url,
    token: &mut Zeroizing<String>,
    origin: &url::Url,
    settings: &RmmSettings,
    deadline: Instant,
) -> Result<Value, RmmError> {
    let mut renewed = false;
    loop {
        let answer = super::send(RMM, deadline, settings.request_timeout, |timeout| {
            Ok(http
                .get(url.clone())
                .header(reqwest::header::AUTHORIZATION, super::bearer(RMM, token)?)
                .header(reqwest::header::ACCEPT, "application/json")
                .timeout(timeout))
        })
        .await?;
        let answer = super::data_answer(
            RMM,
            answer,
            url.path(),
            renewed,
            &[401, 403, 404],
            || {
                format!(
                    "the API user needs read access to site {}; a site UID of another account reads as not found",
                    settings.site
                )
            },
        )?;
        match answer {
            Some(json) => return Ok(json),
            None => {
                renewed = true;
                *token = login(http, origin, settings, deadline).await?;
            }
        }
    }
}

/// One record of a devices page.
fn device(record: &Value) -> Result<RmmDevice, RmmError> {
    let malformed = |what: &str| RmmError::Malformed {
        rmm: RMM,
        detail: format!("a device record {what}"),
    };
    if !record.is_object() {
        return Err(malformed("is not an object"));
    }
    let id = super::id_text(&record["uid"])
        .or_else(|| super::id_text(&record["id"]))
        .ok_or_else(|| malformed("has no uid"))?;
    let hostname = super::text(&record["hostname"]).ok_or_else(|| malformed("has no hostname"))?;
    let last_seen = match &record["lastSeen"] {
        Value::Null => None,
        Value::Number(ms) => ms
            .as_i64()
            .and_then(|ms| {
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
            })
            .map(Some)
            .ok_or_else(|| malformed("has a lastSeen that is not a time"))?,
        _ => return Err(malformed("has a lastSeen that is not epoch milliseconds")),
    };
    let class = record["deviceClass"].as_str().unwrap_or("device");
    Ok(RmmDevice {
        id,
        hostname,
        domain: super::text(&record["domain"]),
        operating_system: super::text(&record["operatingSystem"]),
        device_type: super::text(&record["deviceType"]["category"]),
        ip_address: super::text(&record["intIpAddress"]),
        last_seen,
        online: record["online"].as_bool(),
        computer: class == "device",
        retired: record["deleted"].as_bool() == Some(true)
            || record["suspended"].as_bool() == Some(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_uids_are_uuids_only() {
        assert!(valid_site_uid("8a2f3c4d-1b2c-4d5e-8f90-0123456789ab"));
        for bad in [
            "",
            "8a2f3c4d-1b2c-4d5e-8f90-0123456789a",
            "8a2f3c4d-1b2c-4d5e-8f90-0123456789ab/../x",
            "8a2f3c4d_1b2c-4d5e-8f90-0123456789ab",
            "8a2f3c4d-1b2c-4d5e-8f90-0123456789zz",
        ] {
            assert!(!valid_site_uid(bad), "{bad}");
        }
    }

    #[test]
    fn next_links_stay_on_the_listing() {
        let origin = url::Url::parse("https://concord-api.centrastage.net/").unwrap();
        let listing = "/api/v2/site/8a2f3c4d-1b2c-4d5e-8f90-0123456789ab/devices";
        let good = format!("https://concord-api.centrastage.net{listing}?max=250&page=1");
        assert!(same_listing(&good, &origin, listing).is_ok());
        for bad in [
            format!("https://evil.example{listing}?page=1"),
            format!("http://concord-api.centrastage.net{listing}?page=1"),
            format!("https://concord-api.centrastage.net:8443{listing}?page=1"),
            format!("https://u:p@concord-api.centrastage.net{listing}?page=1"),
            "https://concord-api.centrastage.net/api/v2/account/devices?page=1".to_owned(),
            "https://concord-api.centrastage.net/api/v2/site/00000000-0000-0000-0000-000000000000/devices?page=1".to_owned(),
        ] {
            assert!(
                matches!(
                    same_listing(&bad, &origin, listing),
                    Err(RmmError::ForeignLink { .. })
                ),
                "{bad}"
            );
        }
    }
}
