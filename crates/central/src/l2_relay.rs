//! Remote L2, Central Command's side of `POST /v1/l2/plan` (docs/L2.md, "Remote L2"): an
//! appliance's scrubbed request, authenticated by its L2 key, goes to the configured provider
//! with Central Command's API key and model, within its partner's daily budget; the provider's
//! answer goes back unchanged. The budget is reserved at the request's worst case before the call
//! (so parallel requests cannot overrun it) and corrected to the usage the provider reports.
//! The appliance still scrubs, budgets and judges everything itself; this only relays.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use zeroize::Zeroizing;

use crate::config;

/// The provider client and the settings, built once at start.
#[derive(Debug)]
pub struct L2Relay {
    settings: config::L2,
    client: l2::ProviderClient,
}

/// The relay's handler state.
#[derive(Debug, Clone)]
pub struct L2State {
    pub pool: PgPool,
    pub relay: Arc<L2Relay>,
}

/// Why the relay cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    #[error("l2.api_key_file {path}: {message}")]
    KeyFile { path: String, message: String },
    #[error("l2: {0}")]
    Client(#[from] l2::ClientError),
}

impl L2Relay {
    /// Reads the provider's API key (a 0600 file holding only the key) and builds the client.
    pub fn new(settings: &config::L2) -> Result<L2Relay, RelayError> {
        let path = &settings.api_key_file;
        let key_error = |message: String| RelayError::KeyFile {
            path: path.display().to_string(),
            message,
        };
        let meta = std::fs::metadata(path).map_err(|err| key_error(err.to_string()))?;
        {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(key_error(format!(
                    "mode {:o}: others may read it; `chmod 600` it",
                    meta.permissions().mode() & 0o777
                )));
            }
        }
        let key = Zeroizing::new(
            std::fs::read_to_string(path).map_err(|err| key_error(err.to_string()))?,
        );
        let key = key.trim();
        if key.is_empty() || key.chars().any(|c| c.is_control() || c == ' ') {
            return Err(key_error(
                "must hold only the API key, on one line".to_owned(),
            ));
        }
        let client = l2::ProviderClient::new(l2::ClientSettings {
            provider: settings.provider,
            endpoint: settings.endpoint.clone(),
            api_key: Some(key.to_owned()),
            timeout: std::time::Duration::from_secs(settings.timeout_secs),
            max_retries: 0,
            max_retry_wait: std::time::Duration::ZERO,
            remote: false,
        })?;
        Ok(L2Relay {
            settings: settings.clone(),
            client,
        })
    }
}

/// A new appliance L2 key: 32 random bytes as hex, prefixed so it is recognisable in a vault.
pub fn new_key() -> Result<String, getrandom::Error> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("osl2_{}", hex::encode(bytes)))
}

/// SHA-256 of a key, as stored.
pub fn key_digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Trillionths of a dollar for `tokens` at `micro_usd_per_mtok`.
fn pico(tokens: u64, micro_usd_per_mtok: u64) -> i64 {
    i64::try_from(u128::from(tokens) * u128::from(micro_usd_per_mtok)).unwrap_or(i64::MAX)
}

fn tokens_i64(tokens: u64) -> i64 {
    i64::try_from(tokens).unwrap_or(i64::MAX)
}

/// `POST /v1/l2/plan`.
pub async fn plan(State(state): State<L2State>, headers: HeaderMap, body: Bytes) -> Response {
    let relay = &state.relay;
    let provider = relay.settings.provider;
    let refuse = |status: StatusCode, kind: ErrorKind, message: String| {
        error_answer(provider, status, kind, &message, None)
    };
    // Who asks: an appliance's L2 key.
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|key| (1..=200).contains(&key.len()));
    let Some(key) = key else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            ErrorKind::Authentication,
            "no appliance L2 key: send `Authorization: Bearer <key>` (`osiris-central admin l2 key create`)".to_owned(),
        );
    };
    let caller: Option<(i64, i64)> = match sqlx::query_as(
        "SELECT a.id, a.partner_id FROM l2_keys k JOIN appliances a ON a.id = k.appliance_id \
         WHERE k.key_sha256 = $1 AND k.revoked_at IS NULL",
    )
    .bind(key_digest(key).as_slice())
    .fetch_optional(&state.pool)
    .await
    {
        Ok(row) => row,
        Err(err) => {
            tracing::error!(error = %err, "remote L2: the database is unavailable");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::Overloaded,
                "Central Command's database is unavailable; try again".to_owned(),
            );
        }
    };
    let Some((appliance_id, partner_id)) = caller else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            ErrorKind::Authentication,
            "this L2 key is unknown or revoked".to_owned(),
        );
    };
    let named = headers
        .get("x-osiris-provider")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if named != provider.to_string() {
        return refuse(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidRequest,
            format!(
                "this Central Command relays to {provider}, but the request is for `{}`: set the appliance's [l2] provider = \"{provider}\"",
                named.escape_debug()
            ),
        );
    }
    let Ok(serde_json::Value::Object(mut request)) = serde_json::from_slice(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidRequest,
            "the body is not a JSON object".to_owned(),
        );
    };
    // The partner pays for Central Command's model, within its output cap.
    request.insert(
        "model".to_owned(),
        serde_json::Value::String(relay.settings.model.clone()),
    );
    let asked = request
        .get("max_tokens")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(u64::from(relay.settings.max_tokens));
    let max_tokens = asked.min(u64::from(relay.settings.max_tokens));
    request.insert("max_tokens".to_owned(), max_tokens.into());
    let body = serde_json::Value::Object(request).to_string();
    let (input, output) = (
        body.len() as u64 + l2::request::PROVIDER_OVERHEAD_TOKENS,
        max_tokens,
    );
    let price = (
        relay.settings.input_micro_usd_per_mtok,
        relay.settings.output_micro_usd_per_mtok,
    );
    let worst_tokens = tokens_i64(input + output);
    let worst_pico = pico(input, price.0).saturating_add(pico(output, price.1));
    match reserve(
        &state.pool,
        &relay.settings,
        partner_id,
        worst_tokens,
        worst_pico,
    )
    .await
    {
        Ok(Reserved::Yes) => {}
        Ok(Reserved::Over(why)) => {
            tracing::warn!(appliance = appliance_id, partner = partner_id, %why, "remote L2: a partner's daily budget refused a request");
            return error_answer(
                provider,
                StatusCode::TOO_MANY_REQUESTS,
                ErrorKind::RateLimit,
                &format!("the partner's daily L2 budget is used up: {why}; it resets at 00:00 UTC"),
                Some(seconds_to_utc_midnight()),
            );
        }
        Err(err) => {
            tracing::error!(error = %err, "remote L2: the budget could not be reserved");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::Overloaded,
                "Central Command's database is unavailable; try again".to_owned(),
            );
        }
    }
    let answer = relay.client.forward(&body).await;
    let (used_tokens, used_pico, response) = match answer {
        Ok(answer) => {
            let ok = (200..300).contains(&answer.status);
            let usage = ok.then(|| l2::usage_only(provider, &answer.body)).flatten();
            let (tokens, cost) = match (ok, usage) {
                (true, Some(usage)) => (
                    tokens_i64(usage.input_tokens + usage.output_tokens),
                    pico(usage.input_tokens, price.0)
                        .saturating_add(pico(usage.output_tokens, price.1)),
                ),
                // An answer without its usage is charged at the worst case.
                (true, None) => (worst_tokens, worst_pico),
                // Providers do not bill refused requests.
                (false, _) => (0, 0),
            };
            tracing::info!(
                appliance = appliance_id,
                partner = partner_id,
                status = answer.status,
                tokens,
                "remote L2: relayed a request"
            );
            let mut response = (
                StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY),
                answer.body,
            )
                .into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if let Some(wait) = answer.wait
                && let Ok(value) = HeaderValue::from_str(&wait.as_secs().max(1).to_string())
            {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            (tokens, cost, response)
        }
        Err(err) => {
            tracing::warn!(appliance = appliance_id, partner = partner_id, error = %err, "remote L2: the provider could not be reached");
            // It may have been billed: keep the worst case.
            (
                worst_tokens,
                worst_pico,
                refuse(
                    StatusCode::BAD_GATEWAY,
                    ErrorKind::Api,
                    format!("Central Command could not reach the provider: {err}"),
                ),
            )
        }
    };
    if let Err(err) = settle(
        &state.pool,
        partner_id,
        used_tokens - worst_tokens,
        used_pico - worst_pico,
    )
    .await
    {
        tracing::error!(error = %err, partner = partner_id, "remote L2: the usage could not be corrected; the worst case stays charged");
    }
    response
}

enum Reserved {
    Yes,
    /// Over the limit: why, in words.
    Over(String),
}

/// Reserves the worst case against today's budget, or counts a refusal.
async fn reserve(
    pool: &PgPool,
    settings: &config::L2,
    partner_id: i64,
    tokens: i64,
    pico_usd: i64,
) -> Result<Reserved, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO l2_usage (partner_id, day) VALUES ($1, (now() AT TIME ZONE 'UTC')::date) \
         ON CONFLICT DO NOTHING",
    )
    .bind(partner_id)
    .execute(&mut *tx)
    .await?;
    let (used_tokens, used_pico): (i64, i64) = sqlx::query_as(
        "SELECT tokens, pico_usd FROM l2_usage \
         WHERE partner_id = $1 AND day = (now() AT TIME ZONE 'UTC')::date FOR UPDATE",
    )
    .bind(partner_id)
    .fetch_one(&mut *tx)
    .await?;
    let limits: Option<(i64, i64)> = sqlx::query_as(
        "SELECT daily_tokens, daily_micro_usd FROM l2_budgets WHERE partner_id = $1",
    )
    .bind(partner_id)
    .fetch_optional(&mut *tx)
    .await?;
    let (limit_tokens, limit_micro) = limits.unwrap_or((
        tokens_i64(settings.partner_daily_tokens),
        tokens_i64(settings.partner_daily_micro_usd),
    ));
    let limit_pico = limit_micro.saturating_mul(1_000_000);
    let over = if used_tokens.saturating_add(tokens) > limit_tokens {
        Some(format!(
            "{used_tokens} of {limit_tokens} tokens used today; this request may need up to {tokens}"
        ))
    } else if used_pico.saturating_add(pico_usd) > limit_pico {
        Some(format!(
            "{} of {} spent today; this request may cost up to {}",
            l2::money_words(u128::try_from(used_pico).unwrap_or(0)),
            l2::money_words(u128::try_from(limit_pico).unwrap_or(0)),
            l2::money_words(u128::try_from(pico_usd).unwrap_or(0))
        ))
    } else {
        None
    };
    if over.is_some() {
        sqlx::query(
            "UPDATE l2_usage SET refused = refused + 1 \
             WHERE partner_id = $1 AND day = (now() AT TIME ZONE 'UTC')::date",
        )
        .bind(partner_id)
        .execute(&mut *tx)
        .await?;
    } else {
        sqlx::query(
            "UPDATE l2_usage SET tokens = tokens + $2, pico_usd = pico_usd + $3, requests = requests + 1 \
             WHERE partner_id = $1 AND day = (now() AT TIME ZONE 'UTC')::date",
        )
        .bind(partner_id)
        .bind(tokens)
        .bind(pico_usd)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(match over {
        Some(why) => Reserved::Over(why),
        None => Reserved::Yes,
    })
}

/// Corrects today's reservation by what the call really used (both deltas ≤ 0).
async fn settle(
    pool: &PgPool,
    partner_id: i64,
    tokens: i64,
    pico_usd: i64,
) -> Result<(), sqlx::Error> {
    if tokens == 0 && pico_usd == 0 {
        return Ok(());
    }
    sqlx::query(
        "UPDATE l2_usage SET tokens = GREATEST(tokens + $2, 0), pico_usd = GREATEST(pico_usd + $3, 0) \
         WHERE partner_id = $1 AND day = (now() AT TIME ZONE 'UTC')::date",
    )
    .bind(partner_id)
    .bind(tokens)
    .bind(pico_usd)
    .execute(pool)
    .await?;
    Ok(())
}

fn seconds_to_utc_midnight() -> u64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    u64::try_from(86_400 - now.rem_euclid(86_400)).unwrap_or(86_400)
}

#[derive(Debug, Clone, Copy)]
enum ErrorKind {
    Authentication,
    InvalidRequest,
    RateLimit,
    Overloaded,
    Api,
}

/// An error in the provider's own envelope, so the appliance's client reads it as it reads the
/// provider's.
fn error_answer(
    provider: l2::Provider,
    status: StatusCode,
    kind: ErrorKind,
    message: &str,
    retry_after_secs: Option<u64>,
) -> Response {
    let body = match provider {
        l2::Provider::Anthropic => serde_json::json!({
            "type": "error",
            "error": {
                "type": match kind {
                    ErrorKind::Authentication => "authentication_error",
                    ErrorKind::InvalidRequest => "invalid_request_error",
                    ErrorKind::RateLimit => "rate_limit_error",
                    ErrorKind::Overloaded => "overloaded_error",
                    ErrorKind::Api => "api_error",
                },
                "message": message,
            },
        }),
        l2::Provider::OpenAi => serde_json::json!({
            "error": {
                "message": message,
                "type": match kind {
                    ErrorKind::Authentication => "invalid_request_error",
                    ErrorKind::InvalidRequest => "invalid_request_error",
                    ErrorKind::RateLimit => "insufficient_quota",
                    ErrorKind::Overloaded | ErrorKind::Api => "server_error",
                },
                "param": null,
                "code": match kind {
                    ErrorKind::Authentication => "invalid_api_key",
                    ErrorKind::RateLimit => "insufficient_quota",
                    _ => "osiris_relay",
                },
            },
        }),
    };
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(secs) = retry_after_secs
        && let Ok(value) = HeaderValue::from_str(&secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}
