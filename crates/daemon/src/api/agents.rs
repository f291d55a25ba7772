//! The endpoint agents on the local API: enrollment tokens (made, listed, revoked; each an
//! `operator_action` bundle, the token's text never stored or sealed), the enrolled agents, and
//! revocation (an `agent_revocation` bundle; the agent's stream ends at once).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::api::actions::{operator_action, person, reason};
use crate::api::{Answer, Fail, bad_request, internal};
use crate::pin::ConsoleUnlocked;
use crate::{Shared, now};

fn runtime(shared: &Shared) -> Result<&crate::agents::Runtime, Fail> {
    shared.agents.get().ok_or_else(|| {
        Fail(
            StatusCode::CONFLICT,
            "the agent gateway is off on this appliance".to_owned(),
            Some("add an [agents] table with `listen = \"0.0.0.0:7443\"` to the configuration and restart osirisd".to_owned()),
        )
    })
}

/// What agents are told to connect to: `[agents] advertise`, else the listen address, else (when
/// it listens on every address) the appliance's first address with the port.
fn gateway_address(shared: &Shared, runtime: &crate::agents::Runtime) -> String {
    if let Some(advertise) = shared
        .settings
        .config
        .agents
        .as_ref()
        .and_then(|a| a.advertise.clone())
    {
        return advertise;
    }
    let listen = runtime.listen;
    if !listen.ip().is_unspecified() {
        return listen.to_string();
    }
    let first = shared
        .facts
        .addresses()
        .into_iter()
        .find_map(|address| address.split('/').next().map(str::to_owned));
    match first {
        Some(ip) if ip.contains(':') => format!("[{ip}]:{}", listen.port()),
        Some(ip) => format!("{ip}:{}", listen.port()),
        None => listen.to_string(),
    }
}

pub(crate) async fn create_token(
    State(shared): State<Arc<Shared>>,
    _unlocked: ConsoleUnlocked,
    Json(request): Json<api::AgentTokenRequest>,
) -> Answer<api::AgentToken> {
    let runtime = runtime(&shared)?;
    let by = person(&request.by)?;
    if !(1..=10_000).contains(&request.uses) {
        return Err(bad_request(
            format!("{} uses is out of range", request.uses),
            "a token allows 1 to 10,000 enrollments",
        ));
    }
    if !(60..=30 * 24 * 3600).contains(&request.expires_secs) {
        return Err(bad_request(
            format!("an expiry of {} s is out of range", request.expires_secs),
            "a token is valid for 1 minute to 30 days",
        ));
    }
    let now = now();
    let expires_at = now + i64::try_from(request.expires_secs).unwrap_or(0);
    let token = agent_gateway::create_token(&shared.store, request.uses, now, expires_at, &by)
        .await
        .map_err(internal)?;
    operator_action(
        &shared,
        "agent_token_create",
        &by,
        "enrollment token for endpoint agents",
        serde_json::json!({"token_id": token.id, "uses": token.uses, "expires_at": expires_at}),
    )
    .await?;
    Ok(Json(api::AgentToken {
        token: token.text,
        id: token.id,
        uses: token.uses,
        expires_at,
        gateway: gateway_address(&shared, runtime),
        ca_pin: runtime.pin.to_string(),
    }))
}

pub(crate) async fn tokens(State(shared): State<Arc<Shared>>) -> Answer<Vec<api::AgentTokenInfo>> {
    runtime(&shared)?;
    token_list(&shared).await
}

async fn token_list(shared: &Shared) -> Answer<Vec<api::AgentTokenInfo>> {
    let now = now();
    let tokens = shared.store.agent_tokens().await.map_err(internal)?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|t| api::AgentTokenInfo {
                state: if t.revoked_at.is_some() {
                    "revoked"
                } else if t.expires_at <= now {
                    "expired"
                } else if t.uses_left == 0 {
                    "used up"
                } else {
                    "usable"
                }
                .to_owned(),
                id: t.id,
                uses_total: t.uses_total,
                uses_left: t.uses_left,
                created_at: t.created_at,
                expires_at: t.expires_at,
                created_by: t.created_by,
                revoked_at: t.revoked_at,
            })
            .collect(),
    ))
}

pub(crate) async fn revoke_token(
    State(shared): State<Arc<Shared>>,
    _unlocked: ConsoleUnlocked,
    Json(request): Json<api::AgentTokenRevokeRequest>,
) -> Answer<Vec<api::AgentTokenInfo>> {
    runtime(&shared)?;
    let by = person(&request.by)?;
    let revoked = shared
        .store
        .revoke_agent_token(request.id.trim(), now())
        .await
        .map_err(internal)?;
    if !revoked {
        return Err(Fail(
            StatusCode::NOT_FOUND,
            format!("no usable token has the ID {:?}", request.id.trim()),
            Some("`osiris agent token list` shows the tokens and their IDs".to_owned()),
        ));
    }
    operator_action(
        &shared,
        "agent_token_revoke",
        &by,
        "enrollment token revoked",
        serde_json::json!({"token_id": request.id.trim()}),
    )
    .await?;
    token_list(&shared).await
}

pub(crate) async fn agents(State(shared): State<Arc<Shared>>) -> Answer<api::AgentsState> {
    let Some(runtime) = shared.agents.get() else {
        return Ok(Json(api::AgentsState {
            gateway: None,
            ca_pin: None,
            agents: Vec::new(),
        }));
    };
    let records = shared.store.agents().await.map_err(internal)?;
    let connected = runtime.handle.connected();
    Ok(Json(api::AgentsState {
        gateway: Some(gateway_address(&shared, runtime)),
        ca_pin: Some(runtime.pin.to_string()),
        agents: records
            .into_iter()
            .map(|record| view(record, &connected))
            .collect(),
    }))
}

fn view(record: store::AgentRecord, connected: &[agent_gateway::ConnectedAgent]) -> api::AgentView {
    let live = connected
        .iter()
        .find(|agent| agent.agent_id == record.agent.agent_id);
    api::AgentView {
        connected: live.is_some(),
        queue_items: live.map_or(0, |agent| agent.queue_items),
        clock_skew_ms: live.map_or(0, |agent| agent.clock_skew_ms),
        agent_version: live.map_or_else(
            || record.agent.agent_version.clone(),
            |agent| agent.agent_version.clone(),
        ),
        agent_id: record.agent.agent_id,
        hostname: record.agent.hostname,
        platform: record.agent.platform,
        os: format!("{} {}", record.agent.os, record.agent.os_version),
        enrolled_at: record.agent.enrolled_at,
        revoked_at: record.revoked_at,
        last_seen_at: record.last_seen_at,
        stored_seq: record.stored_seq,
        certificate_expires_at: record.agent.cert_not_after,
    }
}

pub(crate) async fn revoke(
    State(shared): State<Arc<Shared>>,
    _unlocked: ConsoleUnlocked,
    Json(request): Json<api::AgentRevokeRequest>,
) -> Answer<api::AgentView> {
    let runtime = runtime(&shared)?;
    let by = person(&request.by)?;
    let why = reason(&request.reason)?;
    let agent_id = request.agent_id.trim();
    let sealed = agent_gateway::revoke(
        &shared.store,
        &runtime.handle,
        &runtime.drafts,
        agent_id,
        &by,
        &why,
        now(),
    )
    .await
    .map_err(internal)?;
    if sealed.is_none() {
        return Err(Fail(
            StatusCode::NOT_FOUND,
            format!("no enrolled, unrevoked agent has the ID {agent_id:?}"),
            Some("`osiris agent list` shows the agents and their IDs".to_owned()),
        ));
    }
    let record = shared
        .store
        .agent(agent_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| internal("the revoked agent vanished from the registry"))?;
    Ok(Json(view(record, &runtime.handle.connected())))
}

fn releases(shared: &Shared) -> Result<(&crate::agents::Runtime, &agent_gateway::Releases), Fail> {
    let runtime = runtime(shared)?;
    let releases = runtime.releases.as_ref().ok_or_else(|| {
        Fail(
            StatusCode::CONFLICT,
            "agent releases are off: no vendor agent root is configured".to_owned(),
            Some("set `[agents] release_root` to the vendor's signed agent root file and restart osirisd".to_owned()),
        )
    })?;
    Ok((runtime, releases))
}

fn release_list(
    releases: &agent_gateway::Releases,
    offered_now: usize,
) -> Result<api::AgentReleases, Fail> {
    let store = releases
        .read()
        .map_err(|_| internal("the release store lock is poisoned"))?;
    Ok(api::AgentReleases {
        root_version: store.current_root().version(),
        offered_now: offered_now as u64,
        releases: store
            .list()
            .into_iter()
            .map(|r| api::AgentReleaseInfo {
                platform: r.platform.as_str().to_owned(),
                version: r.version.to_string(),
                file_name: r.file_name,
                size: r.size,
                sha256: r.sha256,
                rollout_percent: r.rollout_percent,
                added_at: r.added_unix,
                problem: r.problem,
            })
            .collect(),
    })
}

/// A refusal of the release store, in its own words (they name the problem).
fn refused(err: &agent_release::store::StoreError) -> Fail {
    bad_request(
        err.to_string(),
        "check the manifest, the binary and the roots the vendor published together",
    )
}

pub(crate) async fn release_list_handler(
    State(shared): State<Arc<Shared>>,
) -> Answer<api::AgentReleases> {
    let (_, releases) = releases(&shared)?;
    Ok(Json(release_list(releases, 0)?))
}

pub(crate) async fn add_release(
    State(shared): State<Arc<Shared>>,
    _unlocked: ConsoleUnlocked,
    Json(request): Json<api::AgentReleaseRequest>,
) -> Answer<api::AgentReleases> {
    let (runtime, releases) = releases(&shared)?;
    let by = person(&request.by)?;
    let binary = std::path::PathBuf::from(&request.binary_path);
    if !binary.is_absolute() {
        return Err(bad_request(
            format!("the binary path {:?} is not absolute", request.binary_path),
            "give the full path of the release binary on the appliance",
        ));
    }
    let store = Arc::clone(releases);
    let roots = request.roots.clone();
    let manifest = request.manifest.clone();
    let percent = request.rollout_percent;
    let now = u64::try_from(now()).unwrap_or(0);
    let added = tokio::task::spawn_blocking(move || {
        let mut store = store
            .write()
            .map_err(|_| internal("the release store lock is poisoned"))?;
        if !roots.is_empty() {
            store.add_roots(&roots, now).map_err(|err| refused(&err))?;
        }
        store
            .add(manifest.as_bytes(), &binary, percent, now)
            .map_err(|err| refused(&err))
    })
    .await
    .map_err(internal)??;
    operator_action(
        &shared,
        "agent_release_add",
        &by,
        "agent release added",
        serde_json::json!({
            "platform": added.platform.as_str(), "version": added.version.to_string(),
            "sha256": added.sha256, "size": added.size, "rollout_percent": added.rollout_percent,
        }),
    )
    .await?;
    let offered = agent_gateway::offer_to_connected(&runtime.handle, releases);
    Ok(Json(release_list(releases, offered)?))
}

pub(crate) async fn set_rollout(
    State(shared): State<Arc<Shared>>,
    _unlocked: ConsoleUnlocked,
    Json(request): Json<api::AgentRolloutRequest>,
) -> Answer<api::AgentReleases> {
    let (runtime, releases) = releases(&shared)?;
    let by = person(&request.by)?;
    let platform: agent_release::Platform = request.platform.parse().map_err(|_| {
        bad_request(
            format!("unknown platform {:?}", request.platform),
            "use linux-x86_64 or windows-x86_64",
        )
    })?;
    let version: agent_release::Version = request.version.parse().map_err(|_| {
        bad_request(
            format!("{:?} is not a version", request.version),
            "write it as MAJOR.MINOR.PATCH, as `osiris agent release list` shows it",
        )
    })?;
    {
        let mut store = releases
            .write()
            .map_err(|_| internal("the release store lock is poisoned"))?;
        store
            .set_rollout(
                platform,
                version,
                request.percent,
                u64::try_from(now()).unwrap_or(0),
            )
            .map_err(|err| refused(&err))?;
    }
    operator_action(
        &shared,
        "agent_release_rollout",
        &by,
        "agent release rollout changed",
        serde_json::json!({"platform": platform.as_str(), "version": version.to_string(), "percent": request.percent}),
    )
    .await?;
    let offered = agent_gateway::offer_to_connected(&runtime.handle, releases);
    Ok(Json(release_list(releases, offered)?))
}
