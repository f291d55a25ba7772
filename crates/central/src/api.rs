//! The partners' HTTP API (JSON; the dashboard's pages build on it): login with TOTP, sessions
//! in an HttpOnly + Secure + SameSite=Strict cookie, a CSRF token on every state-changing
//! request, and every route answering only from the caller's [`Scope`](crate::scope::Scope).

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::auth::{self, AuthError, Session};
use crate::link::LinkKeys;
use crate::scope::{self, ScopeError};

/// The session cookie's name.
pub const COOKIE: &str = "osiris_session";

/// Every user route, for documentation and for the test that walks them all as another tenant.
/// `{site}`, `{appliance}`, `{incident}` and `{alert}` are ids; `{opened}` is an incident's
/// opening time in POSIX seconds.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/session"),
    ("POST", "/v1/session/logout"),
    ("POST", "/v1/session/totp/begin"),
    ("POST", "/v1/session/totp/confirm"),
    ("GET", "/v1/sites"),
    ("GET", "/v1/sites/{site}"),
    ("GET", "/v1/sites/{site}/devices"),
    ("GET", "/v1/sites/{site}/incidents"),
    ("GET", "/v1/sites/{site}/healing"),
    ("GET", "/v1/incidents/{appliance}/{incident}/{opened}"),
    (
        "POST",
        "/v1/incidents/{appliance}/{incident}/{opened}/actions",
    ),
    ("POST", "/v1/sites/{site}/claim"),
    ("GET", "/v1/appliances/{appliance}"),
    ("POST", "/v1/appliances/{appliance}/kits"),
    ("GET", "/v1/kits"),
    ("GET", "/v1/kits/{kit}/download"),
    ("GET", "/v1/packets"),
    ("GET", "/v1/packets/{packet}/files/{name}"),
    ("GET", "/v1/releases"),
    ("POST", "/v1/releases/{release}/rollout"),
    ("GET", "/v1/agent-releases"),
    ("POST", "/v1/agent-releases/{agent_release}/rollout"),
    ("GET", "/v1/fleet"),
    ("GET", "/v1/channels"),
    ("POST", "/v1/channels"),
    ("DELETE", "/v1/channels/{channel}"),
    ("GET", "/v1/alerts"),
    ("POST", "/v1/alerts/{alert}/acknowledge"),
    ("GET", "/v1/audit"),
];

/// The client's address as the connection saw it (for login rate limiting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::IpAddr);

/// What the user routes need.
#[derive(Debug, Clone)]
pub struct UserState {
    /// The database.
    pub pool: PgPool,
    /// The link CA (to claim appliances), when configured.
    pub link: Option<Arc<LinkKeys>>,
}

/// An error answer `{"error": …}` with its status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    totp_required: bool,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body {
            error: String,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            totp_required: bool,
        }
        (
            self.status,
            Json(Body {
                error: self.message,
                totp_required: self.totp_required,
            }),
        )
            .into_response()
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> ApiError {
        let status = match &err {
            AuthError::Invalid | AuthError::TotpRequired | AuthError::NoSession => {
                StatusCode::UNAUTHORIZED
            }
            AuthError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            AuthError::Locked => StatusCode::LOCKED,
            AuthError::Expired | AuthError::MfaPending | AuthError::Csrf => StatusCode::FORBIDDEN,
            AuthError::Db(error) => {
                tracing::warn!(%error, "user request: database");
                StatusCode::SERVICE_UNAVAILABLE
            }
            AuthError::Random(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError {
            status,
            totp_required: matches!(err, AuthError::TotpRequired),
            message: match &err {
                AuthError::Db(_) => "the database is unavailable; try again shortly".to_owned(),
                other => other.to_string(),
            },
        }
    }
}

impl From<ScopeError> for ApiError {
    fn from(err: ScopeError) -> ApiError {
        let status = match &err {
            ScopeError::NotFound => StatusCode::NOT_FOUND,
            ScopeError::Forbidden => StatusCode::FORBIDDEN,
            ScopeError::Invalid(_) => StatusCode::BAD_REQUEST,
            ScopeError::Conflict(_) => StatusCode::CONFLICT,
            ScopeError::Db(error) => {
                tracing::warn!(%error, "user request: database");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        ApiError {
            status,
            message: match &err {
                ScopeError::Db(_) => "the database is unavailable; try again shortly".to_owned(),
                other => other.to_string(),
            },
            totp_required: false,
        }
    }
}

/// A session whose second factor may still be pending (TOTP enrolment routes only).
#[derive(Debug, Clone)]
pub struct AnySession(pub Session);

/// A complete session (password and second factor), with the CSRF token checked on every
/// method that changes something.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Session);

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn load_session(parts: &Parts, state: &UserState) -> Result<Session, ApiError> {
    let token = cookie_token(&parts.headers).ok_or(AuthError::NoSession)?;
    let session = auth::session(&state.pool, &token)
        .await?
        .ok_or(AuthError::NoSession)?;
    if parts.method != Method::GET && parts.method != Method::HEAD {
        let sent = parts
            .headers
            .get("x-csrf-token")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        if !constant_time_eq(sent.as_bytes(), session.csrf_token.as_bytes()) {
            return Err(AuthError::Csrf.into());
        }
    }
    Ok(session)
}

impl FromRequestParts<UserState> for AnySession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &UserState,
    ) -> Result<Self, Self::Rejection> {
        Ok(AnySession(load_session(parts, state).await?))
    }
}

impl FromRequestParts<UserState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &UserState,
    ) -> Result<Self, Self::Rejection> {
        let session = load_session(parts, state).await?;
        if !session.mfa_done {
            return Err(AuthError::MfaPending.into());
        }
        Ok(Authenticated(session))
    }
}

/// The user routes.
pub fn router(state: UserState) -> Router {
    Router::new()
        .route("/v1/session/login", post(login))
        .route("/v1/session", get(whoami))
        .route("/v1/session/logout", post(logout))
        .route("/v1/session/totp/begin", post(totp_begin))
        .route("/v1/session/totp/confirm", post(totp_confirm))
        .route("/v1/sites", get(sites))
        .route("/v1/sites/{site}", get(site))
        .route("/v1/sites/{site}/devices", get(site_devices))
        .route("/v1/sites/{site}/incidents", get(site_incidents))
        .route("/v1/sites/{site}/healing", get(site_healing))
        .route("/v1/sites/{site}/claim", post(claim))
        .route(
            "/v1/incidents/{appliance}/{incident}/{opened}",
            get(incident_detail),
        )
        .route(
            "/v1/incidents/{appliance}/{incident}/{opened}/actions",
            post(act_on_incident),
        )
        .route("/v1/appliances/{appliance}", get(appliance))
        .route("/v1/appliances/{appliance}/kits", post(request_kit))
        .route("/v1/kits", get(kits))
        .route("/v1/kits/{kit}/download", get(kit_download))
        .route("/v1/packets", get(packets))
        .route("/v1/packets/{packet}/files/{name}", get(packet_file))
        .route("/v1/releases", get(releases))
        .route("/v1/releases/{release}/rollout", post(set_rollout))
        .route("/v1/agent-releases", get(agent_releases))
        .route(
            "/v1/agent-releases/{agent_release}/rollout",
            post(set_agent_rollout),
        )
        .route("/v1/fleet", get(fleet))
        .route("/v1/channels", get(channels).post(set_channel))
        .route(
            "/v1/channels/{channel}",
            axum::routing::delete(delete_channel),
        )
        .route("/v1/alerts", get(alerts))
        .route("/v1/alerts/{alert}/acknowledge", post(acknowledge))
        .route("/v1/audit", get(audit))
        .with_state(state)
}

/// `POST /v1/session/login`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The login.
    pub email: String,
    /// The password.
    pub password: String,
    /// The authenticator code, when the account has one.
    #[serde(default)]
    pub totp: Option<String>,
}

/// The session as the client may know it.
#[derive(Debug, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The user's address.
    pub email: String,
    /// Their role.
    pub role: String,
    /// The token to send as `X-CSRF-Token` on every POST.
    pub csrf_token: String,
    /// False: set up the authenticator (`/v1/session/totp/begin`) before anything else.
    pub mfa_done: bool,
}

fn info(session: &Session) -> SessionInfo {
    SessionInfo {
        email: session.email.clone(),
        role: serde_json::to_value(session.scope.role)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        csrf_token: session.csrf_token.clone(),
        mfa_done: session.mfa_done,
    }
}

fn session_cookie(token: &str, max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("osiris_session=; Max-Age=0"))
}

async fn login(
    State(state): State<UserState>,
    axum::Extension(addr): axum::Extension<ClientAddr>,
    Json(request): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    let logged_in = auth::login(
        &state.pool,
        &request.email,
        &request.password,
        request.totp.as_deref(),
        &addr.0.to_string(),
    )
    .await?;
    let mut response = Json(info(&logged_in.session)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&logged_in.token, auth::SESSION_MAX_SECS),
    );
    Ok(response)
}

async fn whoami(AnySession(session): AnySession) -> Json<SessionInfo> {
    Json(info(&session))
}

async fn logout(
    State(state): State<UserState>,
    AnySession(session): AnySession,
) -> Result<Response, ApiError> {
    auth::logout(&state.pool, &session).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0));
    Ok(response)
}

/// The enrolment answer: show `uri` as a QR code (and `secret` for typing).
#[derive(Debug, Serialize, Deserialize)]
pub struct TotpBegin {
    /// `otpauth://totp/…`.
    pub uri: String,
}

async fn totp_begin(
    State(state): State<UserState>,
    AnySession(session): AnySession,
) -> Result<Json<TotpBegin>, ApiError> {
    let issuer = "OsirisCare Central Command";
    Ok(Json(TotpBegin {
        uri: auth::totp_begin(&state.pool, &session, issuer).await?,
    }))
}

/// `POST /v1/session/totp/confirm`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirm {
    /// A current code from the new secret.
    pub code: String,
}

async fn totp_confirm(
    State(state): State<UserState>,
    AnySession(session): AnySession,
    Json(request): Json<TotpConfirm>,
) -> Result<StatusCode, ApiError> {
    auth::totp_confirm(&state.pool, &session, &request.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn sites(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
) -> Result<Json<Vec<scope::SiteRow>>, ApiError> {
    Ok(Json(scope::sites(&state.pool, &session.scope).await?))
}

/// A site and its appliances.
#[derive(Debug, Serialize)]
pub struct SiteDetail {
    /// The site.
    pub site: scope::SiteRow,
    /// Its appliances.
    pub appliances: Vec<scope::ApplianceRow>,
}

async fn site(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
    Path(id): Path<i64>,
) -> Result<Json<SiteDetail>, ApiError> {
    let (site, appliances) = scope::site(&state.pool, &session.scope, id).await?;
    Ok(Json(SiteDetail { site, appliances }))
}

async fn site_devices(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
    Path(id): Path<i64>,
) -> Result<Json<Vec<scope::DeviceRow>>, ApiError> {
    Ok(Json(
        scope::site_devices(&state.pool, &session.scope, id).await?,
    ))
}

async fn site_incidents(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
    Path(id): Path<i64>,
) -> Result<Json<Vec<scope::IncidentRow>>, ApiError> {
    Ok(Json(
        scope::site_incidents(&state.pool, &session.scope, id).await?,
    ))
}

async fn site_healing(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
    Path(id): Path<i64>,
) -> Result<Json<Vec<scope::HealingRow>>, ApiError> {
    Ok(Json(
        scope::site_healing(&state.pool, &session.scope, id).await?,
    ))
}

async fn incident_detail(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
    Path((appliance_id, incident_id, opened_at)): Path<(i64, i64, i64)>,
) -> Result<Json<scope::IncidentDetail>, ApiError> {
    let key = scope::IncidentKey {
        appliance_id,
        incident_id,
        opened_at,
    };
    Ok(Json(
        scope::incident_detail(&state.pool, &session.scope, key).await?,
    ))
}

/// `POST /v1/incidents/{appliance}/{incident}/{opened}/actions` with an
/// [`IncidentAction`](scope::IncidentAction): answers 202 `{"id", "status": "waiting"}` (the
/// appliance seals it at its next contact).
async fn act_on_incident(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
    Path((appliance_id, incident_id, opened_at)): Path<(i64, i64, i64)>,
    Json(action): Json<scope::IncidentAction>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let key = scope::IncidentKey {
        appliance_id,
        incident_id,
        opened_at,
    };
    let id = scope::act_on_incident(&state.pool, &session.scope, key, action).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"id": id, "status": "waiting"})),
    ))
}

/// `POST /v1/appliances/{appliance}/kits`: the period the requester cares about, both optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KitRequestBody {
    /// First day, `YYYY-MM-DD`.
    #[serde(default)]
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD`.
    #[serde(default)]
    pub to: Option<String>,
}

async fn request_kit(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
    Path(id): Path<i64>,
    Json(body): Json<KitRequestBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let kit = scope::request_kit(
        &state.pool,
        &session.scope,
        id,
        body.from.as_deref(),
        body.to.as_deref(),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"id": kit, "status": "pending"})),
    ))
}

async fn kits(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
) -> Result<Json<Vec<scope::KitRow>>, ApiError> {
    Ok(Json(scope::kits(&state.pool, &session.scope).await?))
}

async fn kit_download(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
    Path(id): Path<i64>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let (kit, appliance) = scope::kit_download(&state.pool, &session.scope, id).await?;
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/x-tar".to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"osiris-kit-{appliance}-{id}.tar\""),
            ),
        ],
        kit,
    )
        .into_response())
}

async fn packets(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
) -> Result<Json<Vec<scope::PacketRow>>, ApiError> {
    Ok(Json(scope::packets(&state.pool, &session.scope).await?))
}

async fn packet_file(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
    Path((id, name)): Path<(i64, String)>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let (content, sha256) = scope::packet_file(&state.pool, &session.scope, id, &name).await?;
    let content_type = match name.rsplit('.').next() {
        Some("pdf") => "application/pdf",
        Some("html") => "text/html; charset=utf-8",
        Some("csv") => "text/csv; charset=utf-8",
        Some("json") => "application/json",
        _ => "text/plain; charset=utf-8",
    };
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, content_type.to_owned()),
            // Served as a download, never rendered in Central Command's origin (a report's HTML
            // is the appliance's, not ours).
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (
                axum::http::header::HeaderName::from_static("x-content-sha256"),
                sha256,
            ),
        ],
        content,
    )
        .into_response())
}

async fn releases(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
) -> Result<Json<Vec<scope::ReleaseRow>>, ApiError> {
    Ok(Json(scope::releases(&state.pool, &session.scope).await?))
}

/// `POST /v1/releases/{release}/rollout`: offer a release to a share of the partner's
/// appliances and to named practices first (partner administrators).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutBody {
    /// 0–100: the share of appliances offered it (each falls in a fixed bucket, so raising the
    /// share only adds appliances).
    pub percent: i64,
    /// Practices offered it whatever the share.
    #[serde(default)]
    pub practices: Vec<i64>,
}

async fn set_rollout(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
    Path(id): Path<i64>,
    Json(body): Json<RolloutBody>,
) -> Result<StatusCode, ApiError> {
    scope::set_rollout(
        &state.pool,
        &session.scope,
        id,
        body.percent,
        &body.practices,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn agent_releases(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
) -> Result<Json<Vec<scope::AgentReleaseRow>>, ApiError> {
    Ok(Json(
        scope::agent_releases(&state.pool, &session.scope).await?,
    ))
}

/// `POST /v1/agent-releases/{agent_release}/rollout`: as `/v1/releases/{release}/rollout`, for
/// an endpoint-agent release (same body).
async fn set_agent_rollout(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
    Path(id): Path<i64>,
    Json(body): Json<RolloutBody>,
) -> Result<StatusCode, ApiError> {
    scope::set_agent_rollout(
        &state.pool,
        &session.scope,
        id,
        body.percent,
        &body.practices,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn fleet(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
) -> Result<Json<Vec<scope::FleetRow>>, ApiError> {
    Ok(Json(scope::fleet(&state.pool, &session.scope).await?))
}

async fn channels(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
) -> Result<Json<Vec<scope::ChannelRow>>, ApiError> {
    Ok(Json(scope::channels(&state.pool, &session.scope).await?))
}

async fn set_channel(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
    Json(channel): Json<scope::NewChannel>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let keys = state.link.as_ref().ok_or(ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: "this Central Command has no link keys configured ([link] in its configuration)"
            .into(),
        totp_required: false,
    })?;
    scope::set_channel(
        &state.pool,
        &session.scope,
        &keys.channels.public(),
        &channel,
    )
    .await?;
    Ok(Json(
        serde_json::json!({"name": channel.name, "kind": channel.kind}),
    ))
}

async fn delete_channel(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    scope::delete_channel(&state.pool, &session.scope, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/sites/{site}/claim`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// The code on the appliance's console.
    pub code: String,
}

async fn claim(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
    Path(id): Path<i64>,
    Json(request): Json<ClaimRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    scope::check_claim(&state.pool, &session.scope, id).await?;
    let keys = state.link.as_ref().ok_or(ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: "this Central Command has no link CA configured ([link] in its configuration)"
            .into(),
        totp_required: false,
    })?;
    let claimed = crate::claim::claim_appliance(
        &state.pool,
        &keys.ca,
        session.scope.partner_id,
        id,
        &request.code,
        &format!("user:{}", session.scope.user_id),
        Some(session.scope.user_id),
    )
    .await
    .map_err(|err| ApiError {
        status: match err {
            crate::claim::ClaimError::Db(_) => StatusCode::SERVICE_UNAVAILABLE,
            crate::claim::ClaimError::Certificate(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        },
        message: err.to_string(),
        totp_required: false,
    })?;
    Ok(Json(serde_json::json!({
        "appliance_id": claimed.appliance_id,
        "appliance_key": claimed.appliance_key,
    })))
}

async fn appliance(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
    Path(id): Path<i64>,
) -> Result<Json<scope::ApplianceRow>, ApiError> {
    Ok(Json(
        scope::appliance(&state.pool, &session.scope, id).await?,
    ))
}

async fn alerts(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
) -> Result<Json<Vec<scope::AlertRow>>, ApiError> {
    Ok(Json(scope::alerts(&state.pool, &session.scope).await?))
}

async fn acknowledge(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    scope::acknowledge_alert(&state.pool, &session.scope, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn audit(
    State(state): State<UserState>,
    Authenticated(session): Authenticated,
) -> Result<Json<Vec<scope::AuditRow>>, ApiError> {
    Ok(Json(
        scope::audit_log(&state.pool, &session.scope, 200).await?,
    ))
}
