//! From a snapshot to what a check observed: the same JSON object, field for field, as the
//! catalogue's PowerShell detect script for that check prints (`scripts/bitlocker.ps1`, …), so
//! the catalogue's expectations judge a native reading exactly as they judge a WinRM scan.
//!
//! Anything that cannot be read with certainty is `Unreadable` (the check becomes `error`), never
//! a guess that could pass: a source that failed, a missing or mistyped property, a date this
//! code does not understand, an install date in the future.

use serde_json::json;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::value::{Instance, Snapshot, Value};

/// Why a snapshot does not say what a check needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The snapshot source it concerns (e.g. `MSFT_NetFirewallProfile`).
    pub source: String,
    /// What is missing or wrong, in words.
    pub reason: String,
    /// The failing call's code, when a source could not be read at all.
    pub code: Option<i64>,
}

/// What one check observed, or why it cannot tell; `now` dates ages (UTC).
pub fn observe(
    check_id: &str,
    snapshot: &Snapshot,
    now: OffsetDateTime,
) -> Result<serde_json::Value, Unreadable> {
    match check_id {
        crate::BITLOCKER => bitlocker(snapshot),
        crate::DEFENDER => defender(snapshot),
        crate::FIREWALL => firewall(snapshot),
        crate::SCREEN_LOCK => screen_lock(snapshot),
        crate::PATCHES => patches(snapshot, now),
        _ => Err(Unreadable {
            source: check_id.to_owned(),
            reason: format!("no native check for {check_id} in this build"),
            code: None,
        }),
    }
}

/// `Win32_EncryptableVolume` of the system drive: ProtectionStatus (0 off, 1 on, 2 unknown),
/// and from `GetConversionStatus` ConversionStatus (0 fully decrypted, 1 fully encrypted,
/// 2 encrypting, 3 decrypting, 4 encryption paused, 5 decryption paused) and the percentage.
fn bitlocker(snapshot: &Snapshot) -> Result<serde_json::Value, Unreadable> {
    let drive = match instances(snapshot, "SystemDrive")?.first() {
        Some(env) => text(env, "SystemDrive", "SystemDrive")?,
        None => return Err(unreadable("SystemDrive", "SystemDrive is not set")),
    };
    let volumes = instances(snapshot, "Win32_EncryptableVolume")?;
    let on_drive = |instance: &&Instance| matches!(instance.get("DriveLetter"), Some(Value::Text(letter)) if letter.eq_ignore_ascii_case(&drive));
    let Some(volume) = volumes.iter().find(on_drive) else {
        // As the PowerShell check: no encryptable volume for the system drive is not protected.
        return Ok(json!({
            "drive": drive, "present": false, "protection_status": 0,
            "conversion_status": 0, "encryption_method": 0,
        }));
    };
    let source = "Win32_EncryptableVolume";
    let protection_status = int(volume, "ProtectionStatus", source)?;
    let encryption_method = optional_int(volume, "EncryptionMethod", source)?;
    let method = "Win32_EncryptableVolume.GetConversionStatus";
    let Some(conversion) = instances(snapshot, method)?.iter().find(on_drive) else {
        return Err(unreadable(
            method,
            &format!("GetConversionStatus returned nothing for {drive}"),
        ));
    };
    let return_value = int(conversion, "ReturnValue", method)?;
    if return_value != 0 {
        return Err(Unreadable {
            source: method.to_owned(),
            reason: format!("GetConversionStatus on {drive} failed"),
            code: Some(return_value),
        });
    }
    Ok(json!({
        "drive": drive,
        "present": true,
        "protection_status": protection_status,
        "conversion_status": int(conversion, "ConversionStatus", method)?,
        "encryption_percentage": int(conversion, "EncryptionPercentage", method)?,
        "encryption_method": encryption_method,
    }))
}

/// `MSFT_MpComputerStatus` (and, for context only, `MSFT_MpPreference`).
fn defender(snapshot: &Snapshot) -> Result<serde_json::Value, Unreadable> {
    let source = "MSFT_MpComputerStatus";
    let Some(status) = instances(snapshot, source)?.first() else {
        return Err(unreadable(source, "MSFT_MpComputerStatus has no instance"));
    };
    let last_updated = match status.get("AntivirusSignatureLastUpdated") {
        Some(Value::Text(dmtf)) => Some(cim_datetime_utc(dmtf).ok_or_else(|| {
            unreadable(
                source,
                &format!("AntivirusSignatureLastUpdated {dmtf:?} is not a CIM datetime"),
            )
        })?),
        _ => None,
    };
    let mut observed = json!({
        "am_service_enabled": bool_of(status, "AMServiceEnabled", source)?,
        "antivirus_enabled": bool_of(status, "AntivirusEnabled", source)?,
        "real_time_protection_enabled": bool_of(status, "RealTimeProtectionEnabled", source)?,
        "am_running_mode": optional_text(status, "AMRunningMode"),
        "am_engine_version": optional_text(status, "AMEngineVersion"),
        "antivirus_signature_version": optional_text(status, "AntivirusSignatureVersion"),
        "antivirus_signature_age_days": int(status, "AntivirusSignatureAge", source)?,
        "antivirus_signature_last_updated": last_updated,
    });
    // Preferences explain a failure but decide nothing: unreadable ones are noted, not an error.
    let preference = "MSFT_MpPreference";
    let noted = match instances(snapshot, preference) {
        Ok([first, ..]) => Ok(json!({
            "disable_realtime_monitoring": optional_bool(first, "DisableRealtimeMonitoring"),
            "maps_reporting": optional_int(first, "MAPSReporting", preference).ok().flatten(),
            "submit_samples_consent": optional_int(first, "SubmitSamplesConsent", preference).ok().flatten(),
        })),
        Ok([]) => Err("MSFT_MpPreference has no instance".to_owned()),
        Err(err) => Err(err.reason),
    };
    if let Some(object) = observed.as_object_mut() {
        match noted {
            Ok(serde_json::Value::Object(fields)) => object.extend(fields),
            Ok(_) => {}
            Err(reason) => {
                object.insert("preference_unreadable".into(), reason.into());
            }
        }
    }
    Ok(observed)
}

/// `MSFT_NetFirewallProfile`: Enabled (GpoBoolean: 0 false, 1 true, 2 not configured) and
/// DefaultInboundAction (0 not configured, 2 allow, 4 block), judged as the PowerShell check does.
fn firewall(snapshot: &Snapshot) -> Result<serde_json::Value, Unreadable> {
    let source = "MSFT_NetFirewallProfile";
    let rows = instances(snapshot, source)?;
    if rows.is_empty() {
        return Err(unreadable(source, "MSFT_NetFirewallProfile has no profile"));
    }
    let mut profiles = Vec::with_capacity(rows.len());
    let mut disabled = Vec::new();
    let mut inbound_allowing = Vec::new();
    for row in rows {
        let name = text(row, "Name", source)?;
        let enabled = int(row, "Enabled", source)? == 1;
        let inbound = int(row, "DefaultInboundAction", source)?;
        if !enabled {
            disabled.push(name.clone());
        }
        if inbound == 2 {
            inbound_allowing.push(name.clone());
        }
        profiles
            .push(json!({ "name": name, "enabled": enabled, "default_inbound_action": inbound }));
    }
    Ok(json!({
        "profiles": profiles,
        "disabled_profiles": disabled,
        "inbound_allowing_profiles": inbound_allowing,
    }))
}

/// `HKLM\…\Policies\System\InactivityTimeoutSecs`: absent or 0 means the session never locks.
fn screen_lock(snapshot: &Snapshot) -> Result<serde_json::Value, Unreadable> {
    let source = "InactivityTimeoutSecs";
    let secs = match instances(snapshot, source)?.first() {
        None => 0,
        Some(value) => match value.get(source) {
            Some(Value::Int(secs)) => *secs,
            // `[int]` in the PowerShell check reads a number written as text the same way.
            Some(Value::Text(text)) => text.trim().parse::<i64>().map_err(|_| {
                unreadable(
                    source,
                    &format!("InactivityTimeoutSecs is the text {text:?}, not a number"),
                )
            })?,
            Some(other) => {
                return Err(unreadable(
                    source,
                    &format!(
                        "InactivityTimeoutSecs is {}, expected a REG_DWORD",
                        kind(other)
                    ),
                ));
            }
            None => 0,
        },
    };
    Ok(json!({ "configured": secs > 0, "inactivity_timeout_secs": secs }))
}

/// `Win32_QuickFixEngineering`: the newest `InstalledOn` date. The provider writes it as
/// `M/d/yyyy` (the form PowerShell's own type data parses with the invariant culture); rows
/// without a date are ignored, as in the PowerShell check.
fn patches(snapshot: &Snapshot, now: OffsetDateTime) -> Result<serde_json::Value, Unreadable> {
    let source = "Win32_QuickFixEngineering";
    let rows = instances(snapshot, source)?;
    let mut dated: Vec<(Date, String)> = Vec::new();
    let mut unreadable_dates = Vec::new();
    for row in rows {
        let Some(Value::Text(installed)) = row.get("InstalledOn") else {
            continue;
        };
        if installed.trim().is_empty() {
            continue;
        }
        let hotfix = optional_text(row, "HotFixID").unwrap_or_default();
        match month_day_year(installed) {
            Some(date) => dated.push((date, hotfix)),
            None => unreadable_dates.push(installed.clone()),
        }
    }
    if dated.is_empty() && !unreadable_dates.is_empty() {
        return Err(unreadable(
            source,
            &format!(
                "{} listed update(s) but no install date this agent can read (e.g. InstalledOn {:?}; expected M/d/yyyy)",
                unreadable_dates.len(),
                unreadable_dates[0]
            ),
        ));
    }
    // Newest first; the same date keeps the larger KB number first, so the choice is stable.
    dated.sort_by(|a, b| b.cmp(a));
    let Some((newest, hotfix)) = dated.first() else {
        return Ok(json!({
            "n_updates": 0, "latest_hotfix_id": null, "latest_installed_on": null,
            "latest_age_days": 99999, "n_listed": rows.len(),
        }));
    };
    let age_days = (now.date() - *newest).whole_days();
    if age_days < -1 {
        return Err(unreadable(
            source,
            &format!("the newest install date {newest} is in the future: is the clock right?"),
        ));
    }
    let mut observed = json!({
        "n_updates": dated.len(),
        "latest_hotfix_id": hotfix,
        "latest_installed_on": newest.to_string(),
        "latest_age_days": age_days.max(0),
        "n_listed": rows.len(),
    });
    if !unreadable_dates.is_empty()
        && let Some(object) = observed.as_object_mut()
    {
        object.insert("n_unreadable_dates".into(), unreadable_dates.len().into());
    }
    Ok(observed)
}

/// A CIM `datetime` (`yyyymmddHHMMSS.mmmmmmsUUU`, `UUU` the offset from UTC in minutes) as
/// ISO 8601 UTC text (`2024-06-12T08:35:12Z`), or `None` when it is not one.
pub fn cim_datetime_utc(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    if bytes.len() != 25 || bytes[14] != b'.' || !matches!(bytes[21], b'+' | b'-') {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i32> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let date = Date::from_calendar_date(
        number(0..4)?,
        Month::try_from(u8::try_from(number(4..6)?).ok()?).ok()?,
        u8::try_from(number(6..8)?).ok()?,
    )
    .ok()?;
    let clock = Time::from_hms(
        u8::try_from(number(8..10)?).ok()?,
        u8::try_from(number(10..12)?).ok()?,
        u8::try_from(number(12..14)?).ok()?,
    )
    .ok()?;
    number(15..21)?;
    let minutes = number(22..25)?;
    let minutes = if bytes[21] == b'-' { -minutes } else { minutes };
    let offset = UtcOffset::from_whole_seconds(minutes.checked_mul(60)?).ok()?;
    let utc = PrimitiveDateTime::new(date, clock)
        .assume_offset(offset)
        .to_offset(UtcOffset::UTC);
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    ))
}

/// `M/d/yyyy` (one or two digits for month and day) as a date.
fn month_day_year(text: &str) -> Option<Date> {
    let mut parts = text.trim().split('/');
    let (month, day, year) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || year.len() != 4
        || !(1..=2).contains(&month.len())
        || !(1..=2).contains(&day.len())
        || ![month, day, year]
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Date::from_calendar_date(
        year.parse().ok()?,
        Month::try_from(month.parse::<u8>().ok()?).ok()?,
        day.parse().ok()?,
    )
    .ok()
}

fn instances<'a>(snapshot: &'a Snapshot, source: &str) -> Result<&'a [Instance], Unreadable> {
    match snapshot.get(source) {
        Some(Ok(instances)) => Ok(instances),
        Some(Err(error)) => Err(Unreadable {
            source: source.to_owned(),
            reason: error.message.clone(),
            code: error.code,
        }),
        None => Err(unreadable(source, &format!("{source} was not read"))),
    }
}

fn unreadable(source: &str, reason: &str) -> Unreadable {
    Unreadable {
        source: source.to_owned(),
        reason: reason.to_owned(),
        code: None,
    }
}

fn int(instance: &Instance, property: &str, source: &str) -> Result<i64, Unreadable> {
    match instance.get(property) {
        Some(Value::Int(n)) => Ok(*n),
        other => Err(mistyped(property, other, "a number", source)),
    }
}

fn optional_int(
    instance: &Instance,
    property: &str,
    source: &str,
) -> Result<Option<i64>, Unreadable> {
    match instance.get(property) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Int(n)) => Ok(Some(*n)),
        other => Err(mistyped(property, other, "a number", source)),
    }
}

fn bool_of(instance: &Instance, property: &str, source: &str) -> Result<bool, Unreadable> {
    match instance.get(property) {
        Some(Value::Bool(b)) => Ok(*b),
        other => Err(mistyped(property, other, "a boolean", source)),
    }
}

fn optional_bool(instance: &Instance, property: &str) -> Option<bool> {
    match instance.get(property) {
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    }
}

fn text(instance: &Instance, property: &str, source: &str) -> Result<String, Unreadable> {
    match instance.get(property) {
        Some(Value::Text(s)) => Ok(s.clone()),
        other => Err(mistyped(property, other, "text", source)),
    }
}

fn optional_text(instance: &Instance, property: &str) -> Option<String> {
    match instance.get(property) {
        Some(Value::Text(s)) => Some(s.clone()),
        _ => None,
    }
}

fn mistyped(property: &str, value: Option<&Value>, expected: &str, source: &str) -> Unreadable {
    let got = value.map_or("missing".to_owned(), kind);
    unreadable(source, &format!("{property} is {got}, expected {expected}"))
}

fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Int(_) => "a number".into(),
        Value::Text(_) => "text".into(),
        Value::Array(_) => "a list".into(),
        Value::Unsupported(kind) => kind.clone(),
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use crate::observe::{cim_datetime_utc, month_day_year};

    #[test]
    fn reads_cim_datetimes_in_utc() {
        let cases = [
            "20240612083512.000000+000",
            "20240612083512.123456-420",
            "20240101003000.000000+060",
            "20240612083512.000000+00",
            "2024061208351.0000000+000",
            "20241312083512.000000+000",
            "20240612083512.000000*000",
            "",
        ];
        let out: Vec<String> = cases
            .iter()
            .map(|c| format!("{c:?} -> {:?}", cim_datetime_utc(c)))
            .collect();
        expect![[r#"
            "20240612083512.000000+000" -> Some("2024-06-12T08:35:12Z")
            "20240612083512.123456-420" -> Some("2024-06-12T15:35:12Z")
            "20240101003000.000000+060" -> Some("2023-12-31T23:30:00Z")
            "20240612083512.000000+00" -> None
            "2024061208351.0000000+000" -> None
            "20241312083512.000000+000" -> None
            "20240612083512.000000*000" -> None
            "" -> None"#]]
        .assert_eq(&out.join("\n"));
    }

    #[test]
    fn reads_month_day_year_only() {
        let cases = [
            "6/11/2024",
            "12/1/2023",
            "06/11/2024",
            "22/2/2022",
            "2024-06-11",
            "6/11/24",
            "6/11/2024/1",
            "a/1/2024",
        ];
        let out: Vec<String> = cases
            .iter()
            .map(|c| format!("{c:?} -> {:?}", month_day_year(c).map(|d| d.to_string())))
            .collect();
        expect![[r#"
            "6/11/2024" -> Some("2024-06-11")
            "12/1/2023" -> Some("2023-12-01")
            "06/11/2024" -> Some("2024-06-11")
            "22/2/2022" -> None
            "2024-06-11" -> None
            "6/11/24" -> None
            "6/11/2024/1" -> None
            "a/1/2024" -> None"#]]
        .assert_eq(&out.join("\n"));
    }
}
