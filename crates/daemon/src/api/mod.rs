//! The local API: HTTP/1.1 + JSON on a Unix socket that only root, the daemon's own user and the
//! configured group may use (`socket`). Each endpoint of `api::endpoint` is bound here to its
//! handler: reads of the live state (`read`), operator actions, each sealed as evidence before
//! it takes effect (`actions`), evidence export (`export`), the first-boot wizard
//! (`crate::setup`) and the console unlock (`crate::pin`). Handlers never block an async worker: slow work runs on blocking threads.

pub(crate) mod actions;
mod agents;
mod compliance;
mod export;
mod l2;
mod packets;
mod read;
mod socket;

use std::sync::Arc;

use axum::Json;
use axum::handler::Handler;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};

use api::endpoint::{self, Endpoint, Method};

use crate::Shared;

pub(crate) use actions::operator_action;
pub(crate) use socket::{Listener, bind};

/// Connections one user (uid) may hold open at once; another user is never starved by them.
pub(crate) const MAX_CONNECTIONS_PER_USER: usize = 16;
/// Connections in all.
pub(crate) const MAX_CONNECTIONS: usize = 128;
/// The largest request body (setup and action requests are small JSON objects).
pub(crate) const MAX_BODY: usize = 1024 * 1024;
/// A request's headers must arrive within this time (and an idle connection is closed after it).
pub(crate) const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

tokio::task_local! {
    /// The credentials of the peer whose request this task serves (see `operator_action`).
    static PEER: evidence_schema::PeerCredentials;
}

/// The peer of the request being served, if any.
pub(crate) fn current_peer() -> Option<evidence_schema::PeerCredentials> {
    PEER.try_with(Clone::clone).ok()
}

/// Serves the API until the task is aborted: each connection on its own task, with a header
/// timeout and a cap per user and in all, so one local user holding connections open (or
/// trickling bytes) cannot keep the console or `osiris status` from being answered.
pub(crate) async fn serve(mut listener: Listener, shared: Arc<Shared>) {
    use std::collections::HashMap;
    use std::sync::Mutex;
    let router = router(shared);
    let open: Arc<Mutex<HashMap<u32, usize>>> = Arc::new(Mutex::new(HashMap::new()));
    let all = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&all).acquire_owned().await else {
            return;
        };
        let (stream, peer) = listener.accept().await;
        let uid = peer.uid;
        {
            let mut open = open
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let count = open.entry(uid).or_insert(0);
            if *count >= MAX_CONNECTIONS_PER_USER {
                tracing::warn!(
                    uid,
                    "Refused a local API connection: this user already holds {MAX_CONNECTIONS_PER_USER}."
                );
                continue;
            }
            *count += 1;
        }
        let router = router.clone();
        let open = Arc::clone(&open);
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let router = router.clone();
                    let peer = peer.clone();
                    async move {
                        use tower::ServiceExt;
                        // Read the whole body first, within the same time limit as the headers:
                        // a caller cannot hold the connection by trickling it, and no unread
                        // bytes are left when the answer closes the connection (which would
                        // reset it under the client's feet).
                        let (parts, body) = request.into_parts();
                        let read = axum::body::to_bytes(axum::body::Body::new(body), MAX_BODY);
                        let bytes = match tokio::time::timeout(HEADER_TIMEOUT, read).await {
                            Ok(Ok(bytes)) => bytes,
                            Ok(Err(_)) => {
                                return Ok::<_, std::convert::Infallible>(
                                    (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n")
                                        .into_response(),
                                );
                            }
                            Err(_) => {
                                return Ok((
                                    StatusCode::REQUEST_TIMEOUT,
                                    "request body too slow\n",
                                )
                                    .into_response());
                            }
                        };
                        let request =
                            axum::http::Request::from_parts(parts, axum::body::Body::from(bytes));
                        PEER.scope(peer, router.oneshot(request)).await
                    }
                },
            );
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
            if let Err(err) = served {
                tracing::debug!(error = %err, uid, "A local API connection ended with an error.");
            }
            let mut open = open
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(count) = open.get_mut(&uid) {
                *count = count.saturating_sub(1);
            }
        });
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    let routes = Routes(axum::Router::new())
        .on::<endpoint::Status, _, _, _>(read::status)
        .on::<endpoint::Targets, _, _, _>(read::targets)
        .on::<endpoint::Incidents, _, _, _>(read::incidents)
        .on::<endpoint::Healing, _, _, _>(read::healing)
        .on::<endpoint::Evidence, _, _, _>(read::evidence)
        .on::<endpoint::Acknowledge, _, _, _>(actions::acknowledge)
        .on::<endpoint::ScanNow, _, _, _>(actions::scan_now)
        .on::<endpoint::HealNow, _, _, _>(actions::heal_now)
        .on::<endpoint::PauseHealing, _, _, _>(actions::pause)
        .on::<endpoint::ResumeHealing, _, _, _>(actions::resume)
        .on::<endpoint::AddMaintenance, _, _, _>(actions::add_maintenance)
        .on::<endpoint::RemoveMaintenance, _, _, _>(actions::remove_maintenance)
        .on::<endpoint::ApplyUpdate, _, _, _>(actions::update_unavailable)
        .on::<endpoint::RollBackUpdate, _, _, _>(actions::update_unavailable)
        .on::<endpoint::Export, _, _, _>(export::export)
        .on::<endpoint::Unlock, _, _, _>(crate::pin::unlock)
        .on::<endpoint::CreateAgentToken, _, _, _>(agents::create_token)
        .on::<endpoint::AgentTokens, _, _, _>(agents::tokens)
        .on::<endpoint::RevokeAgentToken, _, _, _>(agents::revoke_token)
        .on::<endpoint::Agents, _, _, _>(agents::agents)
        .on::<endpoint::RevokeAgent, _, _, _>(agents::revoke)
        .on::<endpoint::AgentReleaseList, _, _, _>(agents::release_list_handler)
        .on::<endpoint::AddAgentRelease, _, _, _>(agents::add_release)
        .on::<endpoint::SetAgentRollout, _, _, _>(agents::set_rollout)
        .on::<endpoint::L2Pending, _, _, _>(l2::pending)
        .on::<endpoint::ApproveL2, _, _, _>(l2::approve_plan)
        .on::<endpoint::RejectL2, _, _, _>(l2::reject_plan)
        .on::<endpoint::Flywheel, _, _, _>(l2::flywheel)
        .on::<endpoint::ApproveFlywheel, _, _, _>(l2::approve_pattern)
        .on::<endpoint::RejectFlywheel, _, _, _>(l2::reject_pattern)
        .on::<endpoint::SealComplianceRecord, _, _, _>(compliance::seal_record)
        .on::<endpoint::ComplianceRecords, _, _, _>(compliance::records)
        .on::<endpoint::Packets, _, _, _>(packets::list)
        .on::<endpoint::ExportPacket, _, _, _>(packets::export);
    crate::setup::routes(routes)
        .0
        .fallback(not_found)
        .with_state(shared)
}

/// The router under construction; endpoints are added by their `api::endpoint` type.
pub(crate) struct Routes(axum::Router<Arc<Shared>>);

impl Routes {
    /// Binds `handler` to endpoint `E`'s method and route; the handler must answer with `E`'s
    /// answer type (checked at compile time by [`Answers`]).
    pub(crate) fn on<E, H, T, A>(self, handler: H) -> Routes
    where
        E: Endpoint,
        H: Handler<T, Arc<Shared>> + Answers<E, A>,
        T: 'static,
    {
        let method: MethodRouter<Arc<Shared>> = match E::METHOD {
            Method::Get => get(handler),
            Method::Post => post(handler),
            Method::Delete => delete(handler),
        };
        Routes(self.0.route(E::ROUTE, method))
    }
}

/// A handler whose answer is endpoint `E`'s: an async function of its extractors `A` that
/// returns [`Answer<E::Answer>`].
pub(crate) trait Answers<E, A> {}

macro_rules! answers {
    ($($arg:ident),*) => {
        impl<E, F, Fut, $($arg),*> Answers<E, ($($arg,)*)> for F
        where
            E: Endpoint,
            F: Fn($($arg),*) -> Fut,
            Fut: std::future::Future<Output = Answer<E::Answer>>,
        {
        }
    };
}

answers!();
answers!(A1);
answers!(A1, A2);
answers!(A1, A2, A3);
answers!(A1, A2, A3, A4);

/// An error answer: status plus the [`api::ApiError`] body.
#[derive(Debug)]
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

/// A failure of the daemon itself; `err` is said with each of its causes once.
pub(crate) fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Fail {
    Fail(
        StatusCode::INTERNAL_SERVER_ERROR,
        chain(err.into().as_ref()),
        Some("see the daemon log (`journalctl -u osirisd`)".to_owned()),
    )
}

/// An error and its causes, `outer: inner: innermost`.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// Runs blocking work (file writes with fsync, the vault's encryption, `ip`) on a blocking
/// thread, so the async workers keep serving.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Fail> {
    tokio::task::spawn_blocking(work).await.map_err(internal)
}

async fn not_found() -> Fail {
    Fail(
        StatusCode::NOT_FOUND,
        "no such endpoint".to_owned(),
        Some("see docs/LOCAL-API.md for the endpoints of /v1".to_owned()),
    )
}
