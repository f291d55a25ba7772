//! Attestations and exceptions sealed while the daemon holds the store (`osiris attest`,
//! `osiris exception add` go through here when `osirisd` runs): the body is checked again here,
//! sealed, signed into a checkpoint, and counts in the compliance figures at once.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use evidence_schema::{AttestationBody, ExceptionBody};

use crate::Shared;
use crate::api::{Answer, Fail, bad_request, internal};
use crate::pin::ConsoleUnlocked;

/// `GET /v1/compliance/records`: what the compliance figures count (or no longer count), newest first.
pub(crate) async fn records(State(shared): State<Arc<Shared>>) -> Answer<api::ComplianceRecords> {
    let today = time::OffsetDateTime::now_utc().date();
    let accepted = shared.accepted();
    Ok(Json(api::ComplianceRecords {
        exceptions: accepted
            .exceptions
            .iter()
            .rev()
            .map(|e| api::ExceptionRecord {
                check: e.check.clone(),
                target: e.target.clone(),
                reason: e.reason.clone(),
                owner: e.owner.clone(),
                expires: e.expires.to_string(),
                counts: e.expires >= today,
                seq: e.seq,
            })
            .collect(),
        attestations: accepted
            .attestations
            .iter()
            .rev()
            .map(|a| api::AttestationRecord {
                control: format!("{} {}", a.framework.label(), a.control),
                statement: a.statement.clone(),
                by: a.by.clone(),
                expires: a.expires.to_string(),
                counts: a.expires >= today,
                seq: a.seq,
            })
            .collect(),
    }))
}

pub(crate) async fn seal_record(
    State(shared): State<Arc<Shared>>,
    _unlocked: ConsoleUnlocked,
    Json(request): Json<api::ComplianceRecordRequest>,
) -> Answer<api::SealedRecord> {
    let today = time::OffsetDateTime::now_utc().date();
    let settings = &shared.settings;
    let (kind, body) = match request.kind.as_str() {
        evidence_schema::KIND_ATTESTATION => {
            let body: AttestationBody = typed(request.body)?;
            check_attestation(&body, &settings.data_dir, today)?;
            (
                evidence_schema::KIND_ATTESTATION,
                serde_json::to_value(&body).map_err(internal)?,
            )
        }
        evidence_schema::KIND_EXCEPTION => {
            let body: ExceptionBody = typed(request.body)?;
            check_exception(&shared, &body, today)?;
            (
                evidence_schema::KIND_EXCEPTION,
                serde_json::to_value(&body).map_err(internal)?,
            )
        }
        other => {
            return Err(bad_request(
                format!("`{}` is not a compliance record", other.escape_debug()),
                "kind is \"attestation\" or \"exception\"",
            ));
        }
    };
    let appended = shared
        .store
        .append(evidence::BundleDraft {
            site: settings.config.site.clone(),
            kind: kind.to_owned(),
            catalog: settings.catalog.version().to_owned(),
            time: time::OffsetDateTime::now_utc(),
            body,
        })
        .await
        .map_err(|err| {
            Fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the {kind} was not recorded: {}", crate::api::chain(&err)),
                Some("see the daemon log (`journalctl -u osirisd`)".to_owned()),
            )
        })?;
    if let Err(err) = shared.store.create_checkpoint().await {
        tracing::warn!(error = %err, "No checkpoint after a compliance record; the next one covers it.");
    }
    match crate::derive::accepted_risks(&shared.store).await {
        Ok(accepted) => shared.set_accepted(accepted),
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "The attestations and exceptions could not be read again; they count after a restart.");
        }
    }
    tracing::info!(
        kind,
        seq = appended.seq,
        "A compliance record was sealed through the local API."
    );
    Ok(Json(api::SealedRecord { seq: appended.seq }))
}

fn typed<T: serde::de::DeserializeOwned>(body: serde_json::Value) -> Result<T, Fail> {
    serde_json::from_value(body).map_err(|err| {
        bad_request(
            format!("the record's body is not usable: {err}"),
            "see docs/EVIDENCE-FORMAT.md for its fields",
        )
    })
}

/// A person's text: 1 to 2,000 characters, no control characters but line breaks.
fn text(field: &str, value: &str) -> Result<(), Fail> {
    let value = value.trim();
    if value.is_empty()
        || value.chars().count() > 2000
        || value.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(bad_request(
            format!("`{field}` must be 1 to 2,000 printable characters"),
            "say it in words; it is kept as evidence",
        ));
    }
    Ok(())
}

/// `YYYY-MM-DD`, today or later.
fn future(value: &str, today: time::Date) -> Result<(), Fail> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    match time::Date::parse(value, format) {
        Ok(date) if date >= today => Ok(()),
        Ok(_) => Err(bad_request(
            format!("`expires` {value} is in the past"),
            "give the last day it counts, today or later",
        )),
        Err(_) => Err(bad_request(
            format!("`expires` `{}` is not a date", value.escape_debug()),
            "write it as YYYY-MM-DD",
        )),
    }
}

fn check_attestation(
    body: &AttestationBody,
    data_dir: &std::path::Path,
    today: time::Date,
) -> Result<(), Fail> {
    let unknown = || {
        bad_request(
            format!("unknown control `{}`", body.control.escape_debug()),
            "write FRAMEWORK:ID; `osiris catalog controls hipaa` lists the ids",
        )
    };
    let (label, id) = body.control.split_once(':').ok_or_else(unknown)?;
    let framework = model::Framework::ALL
        .into_iter()
        .find(|f| f.label() == label)
        .ok_or_else(unknown)?;
    let control = crate::derive::frameworks()
        .get(framework)
        .and_then(|catalog| catalog.control(id))
        .ok_or_else(unknown)?;
    if let Some(reason) = &control.not_applicable {
        return Err(bad_request(
            format!("{} is not applicable ({reason})", body.control),
            "there is nothing to attest",
        ));
    }
    text("statement", &body.statement)?;
    text("by", &body.by)?;
    future(&body.expires, today)?;
    if let Some(document) = &body.document {
        // The CLI keeps the copy before sealing; only that copy may be named.
        let well_formed = document.sha256.len() == 64
            && document.sha256.bytes().all(|b| b.is_ascii_hexdigit())
            && document.stored_as == format!("documents/{}", document.sha256);
        let kept = well_formed
            && std::fs::metadata(data_dir.join(&document.stored_as))
                .is_ok_and(|meta| meta.is_file() && meta.len() == document.size);
        if !kept {
            return Err(bad_request(
                "the attestation's document is not kept in the data directory",
                "attach it with `osiris attest --file FILE`, which keeps the copy",
            ));
        }
    }
    Ok(())
}

fn check_exception(shared: &Shared, body: &ExceptionBody, today: time::Date) -> Result<(), Fail> {
    if shared.settings.catalog.get(&body.check).is_none() {
        return Err(bad_request(
            format!("unknown check `{}`", body.check.escape_debug()),
            "`osiris catalog list` shows the check ids",
        ));
    }
    let configured = shared
        .settings
        .config
        .targets
        .iter()
        .any(|t| t.name == body.target);
    let seen = shared.state().saved.devices.contains_key(&body.target);
    if !configured && !seen {
        return Err(Fail(
            StatusCode::NOT_FOUND,
            format!(
                "unknown target `{}`: neither configured nor seen by a scan",
                body.target.escape_debug()
            ),
            Some("GET /v1/targets lists the devices".to_owned()),
        ));
    }
    text("reason", &body.reason)?;
    text("compensating", &body.compensating)?;
    text("owner", &body.owner)?;
    future(&body.expires, today)
}
