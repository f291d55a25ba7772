//! The local API: HTTP/1.1 + JSON on a Unix socket that only root, the daemon's own user and the
//! configured group may use. The socket file's mode (0600, or 0660 with the group) is the first
//! gate; every connection's peer credentials (SO_PEERCRED) are checked again before it is served.

use std::path::Path;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use tokio::net::{UnixListener, UnixStream};

use api::{CycleKind, PauseRequest};

use crate::{Shared, derive, host, lock, now};

/// The bound socket and who may use it.
pub(crate) struct Listener {
    inner: UnixListener,
    allowed_gid: Option<u32>,
    own_uid: u32,
}

/// Binds the socket: refuses if another daemon answers on it, replaces a stale file, sets the
/// mode and group before the first connection can be accepted.
pub(crate) fn bind(cfg: &config::DaemonConfig) -> anyhow::Result<Listener> {
    use std::os::unix::fs::PermissionsExt;
    let path = &cfg.socket;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|err| {
            anyhow::anyhow!(
                "cannot create the socket directory {}: {err}",
                dir.display()
            )
        })?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another osirisd is already answering on {}; stop it first",
                path.display()
            );
        }
        std::fs::remove_file(path).map_err(|err| {
            anyhow::anyhow!("cannot replace the stale socket {}: {err}", path.display())
        })?;
    }
    let gid = match &cfg.socket_group {
        Some(group) => Some(group_id(group).ok_or_else(|| {
            ops::BadConfig(format!(
                "daemon.socket_group `{group}` does not exist on this system; create it or remove the setting"
            ))
        })?),
        None => None,
    };
    // Bind with a restrictive umask equivalent: tighten the mode right after bind, before
    // accepting (connections queue in the backlog but are only served after the check below).
    let inner = UnixListener::bind(path)
        .map_err(|err| anyhow::anyhow!("cannot listen on {}: {err}", path.display()))?;
    let mode = if gid.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|err| anyhow::anyhow!("cannot set the mode of {}: {err}", path.display()))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(|err| {
            anyhow::anyhow!("cannot give {} to group {gid}: {err}", path.display())
        })?;
    }
    Ok(Listener {
        inner,
        allowed_gid: gid,
        own_uid: rustix::process::geteuid().as_raw(),
    })
}

impl axum::serve::Listener for Listener {
    type Io = UnixStream;
    type Addr = ();

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, _)) => match stream.peer_cred() {
                    Ok(cred) if self.permits(cred.uid(), cred.gid(), cred.pid()) => {
                        return (stream, ());
                    }
                    Ok(cred) => {
                        tracing::warn!(uid = cred.uid(), gid = cred.gid(), pid = ?cred.pid(), "Refused a local API connection from a user outside root and the osiris group.");
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "Refused a local API connection without peer credentials.")
                    }
                },
                Err(err) => {
                    tracing::warn!(error = %err, "Accepting a local API connection failed.");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(())
    }
}

impl Listener {
    fn permits(&self, uid: u32, gid: u32, pid: Option<i32>) -> bool {
        if uid == 0 || uid == self.own_uid {
            return true;
        }
        let Some(allowed) = self.allowed_gid else {
            return false;
        };
        gid == allowed || pid.is_some_and(|pid| supplementary_groups(pid).contains(&allowed))
    }
}

/// Serves the API until the task is aborted.
pub(crate) async fn serve(listener: Listener, shared: Arc<Shared>) {
    if let Err(err) = axum::serve(listener, router(shared)).await {
        tracing::error!(error = %err, "The local API stopped.");
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .route("/v1/status", get(status))
        .route("/v1/targets", get(targets))
        .route("/v1/incidents", get(incidents))
        .route("/v1/incidents/{id}/ack", post(acknowledge))
        .route("/v1/healing", get(healing))
        .route("/v1/evidence", get(evidence))
        .route("/v1/evidence/export", post(export))
        .route("/v1/scan", post(scan_now))
        .route("/v1/heal", post(heal_now))
        .route("/v1/healing/pause", post(pause))
        .route("/v1/healing/resume", post(resume))
        .route("/v1/maintenance", post(add_maintenance))
        .route("/v1/maintenance/{id}", delete(remove_maintenance))
        .route("/v1/update/apply", post(update_unavailable))
        .route("/v1/update/rollback", post(update_unavailable))
        .merge(crate::setup::routes())
        .fallback(not_found)
        .with_state(shared)
}

/// An error answer: status plus the [`api::ApiError`] body.
pub(crate) struct Fail(
    pub(crate) StatusCode,
    pub(crate) String,
    pub(crate) Option<String>,
);

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(api::ApiError {
                error: self.1,
                hint: self.2,
            }),
        )
            .into_response()
    }
}

pub(crate) type Answer<T> = Result<Json<T>, Fail>;

pub(crate) fn bad_request(error: impl Into<String>, hint: impl Into<String>) -> Fail {
    Fail(StatusCode::BAD_REQUEST, error.into(), Some(hint.into()))
}

pub(crate) fn internal(err: impl std::fmt::Display) -> Fail {
    Fail(
        StatusCode::INTERNAL_SERVER_ERROR,
        // `{:#}` prints an `anyhow::Error`'s whole chain, each cause once.
        format!("{err:#}"),
        Some("see the daemon log (`journalctl -u osirisd`)".to_owned()),
    )
}

async fn not_found() -> Fail {
    Fail(
        StatusCode::NOT_FOUND,
        "no such endpoint".to_owned(),
        Some("see docs/LOCAL-API.md for the endpoints of /v1".to_owned()),
    )
}

async fn status(State(shared): State<Arc<Shared>>) -> Answer<api::Status> {
    let evidence = evidence_state(&shared).await?;
    let mut health = host::health(&shared.data_dir, shared.addresses());
    health.support_code = support_code(&shared);
    health.update = crate::updates::state(&shared.config.daemon.update_state_dir);
    let state = shared.state();
    let devices = derive::device_counts(state.saved.devices.values());
    let last_scan_at = state
        .saved
        .devices
        .values()
        .filter_map(|d| d.last_scan_at)
        .max();
    let cycles = CycleKind::ALL
        .iter()
        .map(|&kind| {
            let control = shared.cycle(kind);
            let record = state
                .saved
                .cycles
                .get(kind.as_str())
                .cloned()
                .unwrap_or_default();
            api::CycleState {
                kind,
                enabled: control.enabled,
                running: *lock(&control.running),
                runs: record.runs,
                last_started_at: record.last_started_at,
                last_finished_at: record.last_finished_at,
                last_outcome: record.last_outcome,
                last_failed: record.last_failed,
                next_due_at: if control.enabled {
                    *lock(&control.next_due)
                } else {
                    None
                },
            }
        })
        .collect();
    let mut incident_counts = api::IncidentCounts::default();
    for incident in state.ledger.all() {
        match incident.phase {
            incidents::Phase::Open => incident_counts.open += 1,
            incidents::Phase::Healing => incident_counts.healing += 1,
            incidents::Phase::Escalated => {
                incident_counts.escalated += 1;
                if !incident.acknowledged {
                    incident_counts.needs_you += 1;
                }
            }
            incidents::Phase::Resolved => incident_counts.resolved += 1,
            incidents::Phase::Closed => {}
        }
    }
    let scores = lock(&shared.scores);
    let compliance = derive::site_compliance(scores.values())
        .into_iter()
        .map(
            |(framework, passing, failing, permille)| api::FrameworkScore {
                trend: state
                    .saved
                    .trend
                    .get(&framework)
                    .cloned()
                    .unwrap_or_default(),
                framework,
                passing,
                failing,
                permille,
            },
        )
        .collect();
    Ok(Json(api::Status {
        site: shared.config.site.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        now: now(),
        started_at: shared.started_at,
        setup_complete: state.saved.setup.complete,
        devices,
        last_scan_at,
        cycles,
        healing: healing_state(&state.saved),
        incidents: incident_counts,
        compliance,
        evidence,
        health,
    }))
}

async fn evidence_state(shared: &Shared) -> Result<api::EvidenceState, Fail> {
    let store = &shared.store;
    let latest = store
        .latest_checkpoint()
        .await
        .map_err(|err| internal(anyhow::Error::new(err)))?;
    let (ots_pending, ots_anchored) = *lock(&shared.ots_counts);
    Ok(api::EvidenceState {
        bundles: store.size(),
        head_hash: store.head().map(|head| hex(&head.line_hash)),
        last_checkpoint_at: latest.as_ref().and_then(|c| {
            time::OffsetDateTime::parse(
                &c.created_at,
                &time::format_description::well_known::Rfc3339,
            )
            .ok()
            .map(|t| t.unix_timestamp())
        }),
        checkpoint_size: latest.map_or(0, |c| c.size),
        ots_pending,
        ots_anchored,
        key_id: store.verifier().key_id_hex(),
    })
}

async fn evidence(State(shared): State<Arc<Shared>>) -> Answer<api::EvidenceState> {
    Ok(Json(evidence_state(&shared).await?))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A short code the partner asks for on the phone: the key id's first 8 hex digits, grouped.
pub(crate) fn support_code(shared: &Shared) -> String {
    let id = shared.store.verifier().key_id_hex().to_uppercase();
    let id: String = id.chars().take(8).collect();
    match id.split_at_checked(4) {
        Some((a, b)) => format!("{a}-{b}"),
        None => id,
    }
}

fn healing_state(saved: &crate::state::Saved) -> api::HealingState {
    let now = now();
    api::HealingState {
        paused: saved.pause.is_some(),
        paused_reason: saved.pause.as_ref().map(|p| p.reason.clone()),
        paused_by: saved.pause.as_ref().map(|p| p.by.clone()),
        paused_at: saved.pause.as_ref().map(|p| p.at),
        maintenance: saved
            .maintenance
            .iter()
            .filter(|w| w.end > now)
            .cloned()
            .collect(),
    }
}

async fn targets(State(shared): State<Arc<Shared>>) -> Answer<Vec<api::Device>> {
    let state = shared.state();
    let mut devices: Vec<api::Device> = state.saved.devices.values().cloned().collect();
    // Configured targets that were never scanned are devices too.
    for target in &shared.config.targets {
        if !state.saved.devices.contains_key(&target.name) {
            let platform: model::Platform =
                target.platform.parse().unwrap_or(model::Platform::Linux);
            devices.push(derive::unscanned(
                target.name.clone(),
                platform,
                target.address.clone(),
            ));
        }
    }
    devices.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(devices))
}

async fn incidents(State(shared): State<Arc<Shared>>) -> Answer<Vec<api::Incident>> {
    let state = shared.state();
    let list = state
        .ledger
        .all()
        .into_iter()
        .filter(|i| i.phase != incidents::Phase::Closed)
        .map(|i| incident(&shared, i))
        .collect();
    Ok(Json(list))
}

fn incident(shared: &Shared, i: &incidents::Incident) -> api::Incident {
    api::Incident {
        id: i.id,
        target: i.target.clone(),
        check: i.check.clone(),
        title: shared
            .catalog
            .get(&i.check)
            .map(|rb| rb.title.clone())
            .unwrap_or_default(),
        severity: i.severity.as_str().to_owned(),
        phase: i.phase.as_str().to_owned(),
        opened_at: i.opened_at,
        updated_at: i.updated_at,
        occurrences: i.occurrences,
        flapping: i.flapping,
        acknowledged: i.acknowledged,
        needs_human: i.phase == incidents::Phase::Escalated
            || (i.phase == incidents::Phase::Open && i.flapping),
        history: i.transitions.iter().map(|t| t.why.clone()).collect(),
    }
}

async fn acknowledge(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<u64>,
    Json(request): Json<api::AckRequest>,
) -> Answer<api::Incident> {
    let by = person(&request.by)?;
    let found = shared
        .state()
        .ledger
        .all()
        .into_iter()
        .find(|i| i.id == id)
        .map(|i| (i.target.clone(), i.check.clone()));
    let Some((target, check)) = found else {
        return Err(Fail(
            StatusCode::NOT_FOUND,
            format!("no incident #{id}"),
            Some("list them with GET /v1/incidents".to_owned()),
        ));
    };
    crate::cycles::incident_event(
        &shared,
        &target,
        &check,
        incidents::Event::Acknowledged { by: by.clone() },
    );
    operator_action(
        &shared,
        "acknowledge",
        &by,
        "",
        serde_json::json!({"incident": id, "target": target, "check": check}),
    )
    .await?;
    let state = shared.state();
    let current = state
        .ledger
        .get(&target, &check)
        .map(|i| incident(&shared, i));
    current
        .map(Json)
        .ok_or_else(|| internal("the incident vanished"))
}

#[derive(serde::Deserialize)]
struct Limit {
    limit: Option<usize>,
}

async fn healing(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<Limit>,
) -> Answer<Vec<api::HealingEntry>> {
    let limit = query
        .limit
        .unwrap_or(100)
        .min(crate::state::HEALING_LOG_MAX);
    let state = shared.state();
    Ok(Json(
        state
            .saved
            .healing_log
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect(),
    ))
}

fn trigger(shared: &Shared, kind: CycleKind, what: &str) -> Answer<api::Triggered> {
    let control = shared.cycle(kind);
    if !control.enabled {
        return Err(Fail(
            StatusCode::CONFLICT,
            format!("{what} is not configured on this appliance"),
            Some("add targets (or [directory]/[workstations]) to the configuration".to_owned()),
        ));
    }
    let queued = *lock(&control.running);
    control.trigger.notify_one();
    let message = if queued {
        format!("{what} is running; another run will follow it")
    } else {
        format!("{what} started")
    };
    Ok(Json(api::Triggered {
        cycle: kind,
        queued,
        message,
    }))
}

async fn scan_now(State(shared): State<Arc<Shared>>) -> Answer<api::Triggered> {
    trigger(&shared, CycleKind::ServerScan, "the server scan")
}

async fn heal_now(State(shared): State<Arc<Shared>>) -> Answer<api::Triggered> {
    // Healing follows every server scan, on fresh results.
    trigger(
        &shared,
        CycleKind::ServerScan,
        "a scan followed by L1 healing",
    )
}

/// A name someone gave for themselves: 1–64 printable characters.
fn person(by: &str) -> Result<String, Fail> {
    let by = by.trim();
    if by.is_empty() || by.chars().count() > 64 || by.chars().any(char::is_control) {
        return Err(bad_request(
            "`by` must be your name (1 to 64 printable characters)",
            "say who you are, e.g. \"Dr. Smith\" or \"alice@msp\"",
        ));
    }
    Ok(by.to_owned())
}

fn reason(reason: &str) -> Result<String, Fail> {
    let reason = reason.trim();
    if reason.is_empty()
        || reason.chars().count() > 500
        || reason.chars().any(|c| c.is_control() && c != '\n')
    {
        return Err(bad_request(
            "a reason is required (up to 500 characters)",
            "say why, e.g. \"server migration tonight\"; it is recorded as evidence",
        ));
    }
    Ok(reason.to_owned())
}

/// Seals an `operator_action` bundle.
pub(crate) async fn operator_action(
    shared: &Shared,
    action: &str,
    by: &str,
    reason: &str,
    details: serde_json::Value,
) -> Result<u64, Fail> {
    let body = evidence_schema::OperatorActionBody {
        action: action.to_owned(),
        by: by.to_owned(),
        reason: reason.to_owned(),
        details,
    };
    let appended = shared
        .store
        .append(evidence::BundleDraft {
            site: shared.config.site.clone(),
            kind: evidence_schema::KIND_OPERATOR_ACTION.to_owned(),
            catalog: shared.catalog.version().to_owned(),
            time: time::OffsetDateTime::now_utc(),
            body: serde_json::to_value(&body).map_err(internal)?,
        })
        .await
        .map_err(|err| internal(anyhow::Error::new(err)))?;
    Ok(appended.seq)
}

async fn pause(
    State(shared): State<Arc<Shared>>,
    Json(request): Json<PauseRequest>,
) -> Answer<api::HealingState> {
    let by = person(&request.by)?;
    let why = reason(&request.reason)?;
    operator_action(&shared, "pause_healing", &by, &why, serde_json::json!({})).await?;
    {
        let mut state = shared.state();
        state.saved.pause = Some(crate::state::Pause {
            reason: why,
            by,
            at: now(),
        });
    }
    shared.save();
    Ok(Json(healing_state(&shared.state().saved)))
}

async fn resume(
    State(shared): State<Arc<Shared>>,
    Json(request): Json<PauseRequest>,
) -> Answer<api::HealingState> {
    let by = person(&request.by)?;
    let why = reason(&request.reason)?;
    operator_action(&shared, "resume_healing", &by, &why, serde_json::json!({})).await?;
    shared.state().saved.pause = None;
    shared.save();
    Ok(Json(healing_state(&shared.state().saved)))
}

async fn add_maintenance(
    State(shared): State<Arc<Shared>>,
    Json(request): Json<api::MaintenanceRequest>,
) -> Answer<api::Maintenance> {
    let why = reason(&request.reason)?;
    if request.end <= request.start || request.end <= now() {
        return Err(bad_request(
            "the window must end after it starts, and in the future",
            "give start and end as Unix seconds",
        ));
    }
    if request.end - request.start > 7 * 24 * 3600 {
        return Err(bad_request(
            "a maintenance window may last at most 7 days",
            "pause healing instead for longer stops",
        ));
    }
    for target in &request.targets {
        if !model::is_valid_host(target) {
            return Err(bad_request(
                format!("`{}` is not a device name", target.escape_debug()),
                "use names as listed by GET /v1/targets",
            ));
        }
    }
    let window = {
        let mut state = shared.state();
        state.saved.next_maintenance_id += 1;
        let window = api::Maintenance {
            id: state.saved.next_maintenance_id,
            start: request.start,
            end: request.end,
            reason: why.clone(),
            targets: request.targets.clone(),
        };
        state.saved.maintenance.retain(|w| w.end > now());
        state.saved.maintenance.push(window.clone());
        window
    };
    shared.save();
    operator_action(
        &shared,
        "maintenance",
        "local API",
        &why,
        serde_json::json!({"id": window.id, "start": window.start, "end": window.end, "targets": window.targets}),
    )
    .await?;
    Ok(Json(window))
}

async fn remove_maintenance(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<u64>,
) -> Answer<api::HealingState> {
    let removed = {
        let mut state = shared.state();
        let before = state.saved.maintenance.len();
        state.saved.maintenance.retain(|w| w.id != id);
        before != state.saved.maintenance.len()
    };
    if !removed {
        return Err(Fail(
            StatusCode::NOT_FOUND,
            format!("no maintenance window #{id}"),
            None,
        ));
    }
    shared.save();
    operator_action(
        &shared,
        "maintenance_removed",
        "local API",
        "",
        serde_json::json!({"id": id}),
    )
    .await?;
    Ok(Json(healing_state(&shared.state().saved)))
}

async fn export(
    State(shared): State<Arc<Shared>>,
    Json(request): Json<api::ExportRequest>,
) -> Answer<api::ExportResult> {
    let dest = Path::new(&request.dest_dir);
    if !dest.is_absolute() {
        return Err(bad_request(
            format!("`{}` is not an absolute path", request.dest_dir),
            "give the USB stick's mount point, e.g. /media/usb",
        ));
    }
    let meta = std::fs::metadata(dest).map_err(|err| {
        bad_request(
            format!("cannot use {}: {err}", dest.display()),
            "is the USB stick plugged in and mounted?",
        )
    })?;
    if !meta.is_dir() {
        return Err(bad_request(
            format!("{} is not a directory", dest.display()),
            "give the USB stick's mount point",
        ));
    }
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let name = format!("osiris-evidence-{}-{stamp}", shared.config.site);
    let partial = dest.join(format!(".{name}.partial"));
    let fin = dest.join(&name);
    // Written under a hidden name and renamed when complete: a stick pulled out or full midway
    // never holds something that looks like a kit.
    let result = shared.store.export_kit(&partial).await;
    let summary = match result {
        Ok(summary) => summary,
        Err(err) => {
            let err = anyhow::Error::new(err);
            let _ = std::fs::remove_dir_all(&partial);
            let text = format!("{err:#}");
            let hint = match io_kind(err.as_ref()) {
                Some(std::io::ErrorKind::ReadOnlyFilesystem) => {
                    "the USB stick is read-only: check its lock switch, or use another stick"
                }
                Some(std::io::ErrorKind::StorageFull) => {
                    "the USB stick is full: free some space or use a bigger stick"
                }
                _ => "check the USB stick and try again",
            };
            return Err(Fail(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("the evidence kit could not be written: {text}"),
                Some(hint.to_owned()),
            ));
        }
    };
    let synced = sync_tree(&partial).and_then(|()| std::fs::rename(&partial, &fin));
    if let Err(err) = synced {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(Fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the evidence kit could not be finished on {}: {err}",
                dest.display()
            ),
            Some("check the USB stick and try again".to_owned()),
        ));
    }
    let bytes = tree_size(&fin);
    operator_action(
        &shared,
        "export",
        "local API",
        "",
        serde_json::json!({"path": fin.display().to_string(), "bundles": summary.bundles}),
    )
    .await?;
    Ok(Json(api::ExportResult {
        path: fin.display().to_string(),
        bundles: summary.bundles,
        bytes,
    }))
}

/// The kind of the first I/O error in an error's source chain.
fn io_kind(err: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        next = err.source();
    }
    None
}

/// fsyncs every file under `dir` and the directory itself.
fn sync_tree(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            std::fs::File::open(&path)?.sync_all()?;
        }
    }
    std::fs::File::open(dir)?.sync_all()
}

fn tree_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() {
                        tree_size(&path)
                    } else {
                        e.metadata().map_or(0, |m| m.len())
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Applying or rolling back an image reboots the appliance: that stays with the partner, who
/// runs `osiris update apply` / `rollback` (status shows where an update stands).
async fn update_unavailable() -> Fail {
    Fail(
        StatusCode::CONFLICT,
        "updates are applied by your IT partner, not from the console".to_owned(),
        Some("call your IT partner; they run `osiris update apply` on the appliance".to_owned()),
    )
}

/// The numeric id of a group, from /etc/group.
fn group_id(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        fields.nth(1)?.parse().ok()
    })
}

/// The supplementary groups of a process, from /proc/PID/status.
fn supplementary_groups(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("Groups:"))
                .map(|groups| {
                    groups
                        .split_whitespace()
                        .filter_map(|g| g.parse().ok())
                        .collect()
                })
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_root_the_daemon_user_and_the_group_are_let_in() {
        let listener = |gid| Listener {
            inner: {
                let dir = tempfile::tempdir().unwrap();
                let std = std::os::unix::net::UnixListener::bind(dir.path().join("s")).unwrap();
                std.set_nonblocking(true).unwrap();
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let _guard = rt.enter();
                UnixListener::from_std(std).unwrap()
            },
            allowed_gid: gid,
            own_uid: 990,
        };
        let no_group = listener(None);
        assert!(no_group.permits(0, 0, None));
        assert!(no_group.permits(990, 5, None));
        assert!(!no_group.permits(1000, 1000, None));
        let group = listener(Some(777));
        assert!(group.permits(1000, 777, None));
        assert!(
            !group.permits(1000, 1000, None),
            "pid unknown: supplementary groups cannot be read"
        );
    }

    #[test]
    fn names_and_reasons_are_checked() {
        assert!(person("  ").is_err());
        assert!(person("alice\u{7}").is_err());
        assert_eq!(person(" Dr. Smith ").ok(), Some("Dr. Smith".to_owned()));
        assert!(reason("").is_err());
        assert!(reason(&"x".repeat(501)).is_err());
        assert!(reason("vendor is upgrading the PACS server").is_ok());
    }
}
